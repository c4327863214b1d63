"""ONNX export of the package's backbones and of whole models built from its configs.

The graph is recorded by torch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``) with the batch, height and width of the input dynamic. The traced forward follows
any input size because

* the backbones skip no size-dependent work under a tracer (zero pads, the position table at its
  own grid: :mod:`visattn_mm.models.layers.tracing`);
* window masks, pads, crops, window counts and position-table resizes are computed from the
  traced sizes;
* mmcv's / mmdet's ``AdaptivePadding`` (Swin's patch embedding and patch merging) and mmseg's
  ``Upsample`` (in FPN heads), which round their sizes in Python, and ``nn.AdaptiveAvgPool2d`` to
  more than one cell (UPerNet's pyramid pooling), which the exporter refuses on an input of
  dynamic size, are replaced during the export by the same computation on traced sizes.

What a graph cannot hold is a *choice* that depends on the size. The window families have one:
the small-map rule (a stage map whose short side is at most the window is attended without shift;
PSLT also shrinks the window to that side; the Swin forms without ``pad_small_map``). The
exported graph keeps the branch the example input took, so export at a size where every window
stage takes the branch your inputs will take: for the usual case, maps larger than the window in
every window stage (PSLT and Swin-T with window 7: H, W > 7 * 32 = 224), and check the file at a
second size (``verify_shapes``): :func:`onnx_errors` reports the difference to torch,
:func:`export_onnx` raises when it is too large.

Two-stage detectors are refused (:class:`TensorForward`). Fused attention
(``F.scaled_dot_product_attention``) exports as its ONNX decomposition; models built with
``VISATTN_FUSED_ATTN=0`` export the written-out formula; both match torch to ~1e-6.
"""
import os
import os.path as osp
import types
import warnings
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Shape = Tuple[int, int]


def _flatten(outputs) -> List[torch.Tensor]:
    """Tensors of nested tuples / lists / dicts, in order."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [t for o in outputs for t in _flatten(o)]
    raise TypeError(f'cannot export an output of type {type(outputs).__name__}; the model must '
                    'return tensors (or tuples, lists, dicts of them)')


class TensorForward(nn.Module):
    """A model's tensor forward with its outputs as one flat tuple of tensors.

    For an mmengine ``BaseModel`` (mmpretrain classifier, mmdet detector, mmseg segmentor) this
    is ``model(x, mode='tensor')``: a classifier's head logits, a detector's raw head maps, a
    segmentor's logits (no post-processing, no data preprocessor: the input is the normalised
    image batch). Any other module is called as ``model(x)``.

    Args:
        model (nn.Module): the model.

    Raises:
        ValueError: a two-stage detector (its tensor forward needs each image's proposals, from
            the RPN's per-image NMS): export its backbone instead.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if hasattr(model, 'rpn_head') and hasattr(model, 'roi_head'):
            raise ValueError(f'{type(model).__name__} is a two-stage detector: its tensor '
                             "forward runs the RPN's per-image proposal selection, which has no "
                             'traced form here; export the backbone (--backbone-only) or use '
                             'mmdeploy for the whole detector')
        self.model = model
        from mmengine.model import BaseModel
        self.tensor_mode = isinstance(model, BaseModel)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        out = self.model(x, mode='tensor') if self.tensor_mode else self.model(x)
        return tuple(_flatten(out))


def _traced_adaptive_padding(self, x: torch.Tensor) -> torch.Tensor:
    """``AdaptivePadding.forward`` on traced sizes (mmcv's rounds them in Python)."""
    pads = []
    for size, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
        out = (size + s - 1) // s  # ceil(size / s)
        pad = (out - 1) * s + (k - 1) * d + 1 - size
        pads.append(torch.clamp(pad, min=0) if isinstance(pad, torch.Tensor) else max(pad, 0))
    pad_h, pad_w = pads
    if self.padding == 'corner':
        return F.pad(x, [0, pad_w, 0, pad_h])
    return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])


def _traced_upsample(self, x: torch.Tensor) -> torch.Tensor:
    """mmseg ``Upsample.forward`` with the output size kept traced (mmseg takes ``int()``)."""
    if self.size:
        size = self.size
    else:
        factors = self.scale_factor if isinstance(self.scale_factor, tuple) \
            else (self.scale_factor,) * 2
        size = [t * int(f) if float(f).is_integer() else torch.floor(t * f).long()
                for t, f in zip(x.shape[-2:], factors)]
    return F.interpolate(x, size=size, mode=self.mode, align_corners=self.align_corners)


def _traced_adaptive_avg_pool2d(self, x: torch.Tensor) -> torch.Tensor:
    """``nn.AdaptiveAvgPool2d`` as the mean of each cell's slice, torch's cells: rows
    ``floor(i H / n) .. ceil((i + 1) H / n)`` (likewise columns), with traced bounds."""
    size = self.output_size if isinstance(self.output_size, (tuple, list)) \
        else (self.output_size,) * 2
    if None in size or tuple(size) == (1, 1):  # (a global pool exports as it is)
        return F.adaptive_avg_pool2d(x, self.output_size)
    (H, W), (n, m) = x.shape[-2:], size
    rows = []
    for i in range(n):
        top, bottom = (i * H) // n, ((i + 1) * H + n - 1) // n
        cells = [x[:, :, top:bottom, (j * W) // m:((j + 1) * W + m - 1) // m].mean(dim=(2, 3))
                 for j in range(m)]
        rows.append(torch.stack(cells, dim=-1))  # (B, C, m)
    return torch.stack(rows, dim=-2)  # (B, C, n, m)


# (class name, module prefix) -> the traced forward that replaces it during an export
_TRACED_FORWARDS = {
    ('AdaptivePadding', ''): _traced_adaptive_padding,  # mmcv, mmdet, mmseg, mmpretrain
    ('Upsample', 'mmseg.'): _traced_upsample,
    ('AdaptiveAvgPool2d', 'torch.'): _traced_adaptive_avg_pool2d,
}


@contextmanager
def export_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode with size-following pads, restored afterwards.

    Args:
        model (nn.Module): the model to export.

    Yields:
        nn.Module: the same model.
    """
    was_training = model.training
    patched = []
    for module in model.modules():
        for (name, prefix), forward in _TRACED_FORWARDS.items():
            if type(module).__name__ == name and type(module).__module__.startswith(prefix):
                module.forward = types.MethodType(forward, module)
                patched.append(module)
    model.eval()
    try:
        yield model
    finally:
        for module in patched:
            del module.forward
        model.train(was_training)


def _dynamic_axes(input_name: str, output_names: Sequence[str],
                  outputs: Sequence[torch.Tensor]) -> Dict[str, Dict[int, str]]:
    axes = {input_name: {0: 'batch', 2: 'height', 3: 'width'}}
    for name, out in zip(output_names, outputs):
        axes[name] = {0: 'batch'}
        if out.dim() == 4:  # a map: its size follows the input's
            axes[name].update({2: f'{name}_height', 3: f'{name}_width'})
        elif out.dim() == 3:  # tokens
            axes[name][1] = f'{name}_tokens'
    return axes


def export_onnx(model: nn.Module, path: str, example_shape: Shape = (224, 224),
                batch_size: int = 1, in_channels: int = 3, opset_version: int = 17,
                verify_shapes: Sequence[Shape] = (), rtol: float = 1e-4,
                seed: int = 0) -> Dict[Shape, List[float]]:
    """Write a model's forward to an ONNX file with dynamic batch, height and width.

    Args:
        model (nn.Module): a backbone (returns a tensor or a tuple of them) or a whole model
            (wrap an mmengine model in :class:`TensorForward`; done here if it is one).
        path (str): the ``.onnx`` file to write (its folder is created).
        example_shape (tuple[int, int]): (H, W) of the traced example. For window backbones it
            fixes the small-map branch (see the module doc). Defaults to (224, 224).
        batch_size (int): batch of the traced example. Defaults to 1.
        in_channels (int): channels of the example. Defaults to 3.
        opset_version (int): the ONNX opset. Defaults to 17.
        verify_shapes (Sequence[tuple[int, int]]): sizes at which onnxruntime must reproduce
            torch after the export (the example's size is checked too when this is given);
            needs ``onnxruntime``. Defaults to () (no check).
        rtol (float): the largest ``max|onnx - torch| / max|torch|`` per output accepted by
            the check. Defaults to 1e-4.
        seed (int): seed of the random inputs. Defaults to 0.

    Returns:
        dict: ``{(H, W): [relative error per output]}`` for the checked sizes (empty without
        ``verify_shapes``).

    Raises:
        RuntimeError: the check failed at a size (the graph does not follow it or differs).
    """
    from mmengine.model import BaseModel
    if isinstance(model, BaseModel):
        model = TensorForward(model)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, in_channels, *example_shape, generator=generator)
    with export_mode(model), torch.no_grad():
        outputs = _flatten(model(x))
        output_names = [f'out{i}' for i in range(len(outputs))]
        with warnings.catch_warnings():
            # the tracer's notes on Python-side checks (shape asserts, the small-map choice),
            # and the notice that this is the TorchScript-based exporter
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            warnings.simplefilter('ignore', DeprecationWarning)
            torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset_version,
                              input_names=['input'], output_names=output_names,
                              dynamic_axes=_dynamic_axes('input', output_names, outputs))
    if not verify_shapes:
        return {}
    shapes = [tuple(example_shape)] + [tuple(s) for s in verify_shapes
                                       if tuple(s) != tuple(example_shape)]
    errors = onnx_errors(path, model, shapes, batch_size=batch_size, in_channels=in_channels,
                         seed=seed)
    bad = {s: e for s, e in errors.items() if max(e) > rtol}
    if bad:
        raise RuntimeError(
            f'{path}: onnxruntime differs from torch by more than {rtol} (relative) at '
            + ', '.join(f'{h}x{w} ({max(e):.3g})' for (h, w), e in bad.items())
            + f'; exported at {example_shape[0]}x{example_shape[1]}. A window backbone keeps the '
              "example's small-map choice: export at a size whose window stages take the same "
              'branch as these sizes (see visattn_mm.deployment.onnx).')
    return errors


def onnx_errors(path: str, model: nn.Module, shapes: Sequence[Shape], batch_size: int = 2,
                in_channels: int = 3, seed: int = 0) -> Dict[Shape, List[float]]:
    """onnxruntime against torch on random inputs of the given sizes.

    Args:
        path (str): the ONNX file.
        model (nn.Module): the model it was exported from (run in eval mode, no grad).
        shapes (Sequence[tuple[int, int]]): (H, W) sizes to run.
        batch_size (int): batch of the inputs. Defaults to 2.
        in_channels (int): channels of the inputs. Defaults to 3.
        seed (int): seed of the inputs. Defaults to 0.

    Returns:
        dict: ``{(H, W): [max|onnx - torch| / max|torch| per output]}``; ``inf`` where
        onnxruntime fails or an output's shape differs.
    """
    import onnxruntime as ort
    from mmengine.model import BaseModel
    if isinstance(model, BaseModel):
        model = TensorForward(model)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    generator = torch.Generator().manual_seed(seed + 1)
    was_training = model.training
    model.eval()  # torch as users run it: without export_mode's traced replacements
    try:
        return _compare(session, model, shapes, batch_size, in_channels, generator)
    finally:
        model.train(was_training)


def _compare(session, model: nn.Module, shapes: Sequence[Shape], batch_size: int,
             in_channels: int, generator: torch.Generator) -> Dict[Shape, List[float]]:
    """Run torch and the onnxruntime session on the same random inputs."""
    errors: Dict[Shape, List[float]] = {}
    with torch.no_grad():
        for shape in shapes:
            x = torch.randn(batch_size, in_channels, *shape, generator=generator)
            expected = [t.float().numpy() for t in _flatten(model(x))]
            try:
                got = session.run(None, {'input': x.numpy()})
            except Exception as e:  # onnxruntime's own error types  # noqa: BLE001
                warnings.warn(f'onnxruntime failed at {shape}: {str(e).splitlines()[0][:300]}')
                errors[tuple(shape)] = [float('inf')] * len(expected)
                continue
            errors[tuple(shape)] = [
                float(np.abs(g - e).max() / max(np.abs(e).max(), 1e-12)) if g.shape == e.shape
                else float('inf') for g, e in zip(got, expected)]
    return errors


def build_from_config(config: Union[str, 'mmengine.Config'], checkpoint: Optional[str] = None,
                      backbone_only: bool = False) -> nn.Module:
    """The ``model`` of a config, ready to export: built in the config's default scope, SyncBN
    turned into BN, weights from ``checkpoint`` (else as initialised at construction: the
    backbone's ``init_cfg``, e.g. a Pretrained file, is not loaded).

    Args:
        config (str | Config): a config file of the package (or any OpenMMLab config that
            imports it).
        checkpoint (str, optional): a checkpoint of that model (a Runner's ``.pth``).
            Defaults to None.
        backbone_only (bool): return ``model.backbone``. Defaults to False.

    Returns:
        nn.Module: the model (a :class:`TensorForward` of it unless ``backbone_only``) or its
        backbone, in eval mode.
    """
    from visattn_mm.apis.config import build_model_from_config
    model = build_model_from_config(config, checkpoint)  # (SyncBN -> BN, eval mode)
    return model.backbone if backbone_only else TensorForward(model)
