"""Inference paths that save whole passes over memory on the CPU: fused conv units, chunked FFNs.

On the CPU an elementwise pass over a feature map costs about as much as the conv or matmul that
made it (all memory bound; docs/speed.md). At inference (eval mode, no autograd) these passes
can go:

* conv -> GELU -> BatchNorm units (:class:`ConvGeluNorm`): the GELU (erf) runs inside the conv
  as a oneDNN post-op (``mkldnn::_convolution_pointwise``, the op inductor emits for the same
  pattern); a BN is a fixed per-channel affine map, so one right after a conv folds into the
  conv's weight and bias, and one whose output feeds a 1x1 conv folds into that conv's input
  channels (not into a padded k x k conv: that conv would see the BN's shift, not zero, at the
  padding).
* a conv followed by a GELU (:func:`conv_gelu`, FCViT's mixers): one oneDNN op.
* Linear layers (:class:`Linear`, :func:`linear_act`) run as oneDNN matmuls on their weight
  packed once into oneDNN's blocked layout (kept while the weight is unchanged), with a
  following GELU or ReLU as a post-op (``F.linear``'s MKL repacks the weight in every call).
  The packed copy costs the weights' memory once more.
* convolutional blocks with a wide hidden map (:func:`in_image_chunks`: FCViT's channel mixer,
  PSLT's MobileNetV2 blocks) run over chunks of images, so that the batch's hidden maps are
  never allocated.
* transformer FFNs (:func:`ffn_residual`) run over chunks of tokens, so that no hidden layer of
  the whole batch is allocated and each chunk's is read back while it is still warm; their two
  Linears (and the GELU) as above.

The fused and chunked forms equal the plain modules to float rounding (~1e-7 relative).
Training, autograd, tracing, compilation, autocast and non-CPU tensors take the plain modules.
"""
import math
import weakref
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import nn

from ...compat import dispatch_mode, is_autocast_enabled, is_compiling, onednn_fusion_ops
from .activation import GELU, gelu
from .tracing import is_tracing

Affine = Tuple[torch.Tensor, torch.Tensor]  # per-channel (scale, shift)


def inference_fusion_enabled(x: torch.Tensor, module: nn.Module) -> bool:
    """Whether ``module`` may run its fused inference path on ``x``."""
    # (compiling first: dynamo then skips the rest, which it cannot trace, and inductor fuses;
    # under a dispatch mode, such as FlopCounterMode counting MACs, the plain ops are the ones
    # it knows, unless the mode says it times the real ones: KernelTimer)
    if is_compiling():
        return False
    mode = dispatch_mode()
    return (not is_tracing() and (mode is None or getattr(mode, 'keeps_fused_paths', False))
            and not module.training and not torch.is_grad_enabled()
            and x.device.type == 'cpu' and x.dtype == torch.float32
            and torch.backends.mkldnn.enabled and not is_autocast_enabled('cpu')
            and onednn_fusion_ops())


def is_fixed_bn(norm: nn.Module) -> bool:
    """Whether ``norm`` is a BatchNorm in eval mode with running statistics (an affine map)."""
    return (isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training
            and norm.running_mean is not None)


def bn_affine(norm: nn.Module) -> Affine:
    """The per-channel (scale, shift) of a BatchNorm for which :func:`is_fixed_bn` holds."""
    scale = (norm.running_var + norm.eps).rsqrt()
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return scale, shift


class ConvGeluNorm(nn.Module):
    """conv -> GELU -> norm (``act=False``: conv -> norm); keys ``conv``, ``norm``.

    At inference on the CPU (see :func:`inference_fusion_enabled`) the conv and GELU run as one
    oneDNN op and a BatchNorm is folded where that is exact (see the module's docstring).

    Args:
        in_channels (int): input channels C_in.
        out_channels (int): output channels C_out.
        kernel_size (int): the conv's square kernel k; padded by k // 2.
        stride (int): the conv's stride. Defaults to 1.
        groups (int): the conv's groups. Defaults to 1.
        bias (bool): bias in the conv. Defaults to False.
        act (bool): GELU between the conv and the norm. Defaults to True.
        norm_cfg (dict, optional): the norm. Defaults to None: ``dict(type='BN')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False, act: bool = True,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                              groups=groups, bias=bias)
        self.act = GELU() if act else None
        self.norm = build_norm_layer(norm_cfg or dict(type='BN'), out_channels)[1]
        # a BN before this conv can be folded into it: 1x1, stride 1, no groups
        self.takes_input_affine = kernel_size == 1 and stride == 1 and groups == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        return run_conv_units(x, (self, ))

    def fusable(self, x: torch.Tensor) -> bool:
        return inference_fusion_enabled(x, self) and is_fixed_bn(self.norm)

    def fused(self, x: torch.Tensor, in_affine: Optional[Affine] = None,
              apply_norm: bool = True) -> torch.Tensor:
        """The unit as one oneDNN conv (only where :meth:`fusable`).

        Args:
            x (Tensor): (B, C_in, H, W).
            in_affine (tuple, optional): (scale, shift) of a BN between the previous unit and
                this one (1x1 convs only), folded into this conv. Defaults to None.
            apply_norm (bool): False leaves this unit's norm to the next unit (its
                ``in_affine``). Defaults to True.
        """
        weight, bias = self.conv.weight, self.conv.bias
        if in_affine is not None:  # W (s x + t) + b = (W s) x + (b + W t)
            scale, shift = in_affine
            shift_out = torch.mv(weight.flatten(1), shift)
            weight = weight * scale[None, :, None, None]
            bias = shift_out if bias is None else bias + shift_out
        gelu = self.act is not None
        if apply_norm and not gelu:  # S (W x + b) + T
            scale, shift = bn_affine(self.norm)
            weight = weight * scale[:, None, None, None]
            bias = shift if bias is None else bias * scale + shift
            apply_norm = False
        y = _onednn_conv(x, self.conv, weight, bias, gelu)
        return self.norm(y) if apply_norm else y


def _onednn_conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor,
                 bias: Optional[torch.Tensor], gelu: bool) -> torch.Tensor:
    """``conv``'s geometry with ``weight`` and ``bias``, the GELU (erf) as a post-op."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation),
        conv.groups, 'gelu' if gelu else 'none', [], 'none' if gelu else None)


def conv_gelu(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``GELU(conv(x))``; at CPU inference one oneDNN op."""
    if inference_fusion_enabled(x, conv) and conv.padding_mode == 'zeros' \
            and not isinstance(conv.padding, str):
        return _onednn_conv(x, conv, conv.weight, conv.bias, gelu=True)
    return gelu(conv(x))


def run_conv_units(x: torch.Tensor, units: Sequence[ConvGeluNorm]) -> torch.Tensor:
    """``units`` one after the other; at inference fused, each BN that is followed by a 1x1
    unit folded into that unit."""
    if not all(unit.fusable(x) for unit in units):
        for unit in units:
            x = unit.norm(unit.act(unit.conv(x)) if unit.act is not None else unit.conv(x))
        return x
    pending: Optional[Affine] = None
    for unit, following in zip(units, [*units[1:], None]):
        defer = (unit.act is not None and following is not None
                 and following.takes_input_affine)
        x = unit.fused(x, in_affine=pending, apply_norm=not defer)
        pending = bn_affine(unit.norm) if defer else None
    return x


# a Linear's weight in oneDNN's packed layout, with the weight it was packed from and that
# weight's version counter (in-place updates such as an optimiser step or load_state_dict bump
# it); weakly keyed, so that it goes with the layer and is never saved or copied with it
_PACKED_WEIGHTS: 'weakref.WeakKeyDictionary[nn.Module, tuple]' = weakref.WeakKeyDictionary()

# the post-ops of linear_act: oneDNN's name and algorithm, and the plain function
_LINEAR_ACTS = {
    'none': ('none', '', lambda y: y),
    'relu': ('relu', '', F.relu),
    'gelu': ('gelu', 'none', F.gelu),  # erf GELU, nn.GELU's default
    'sigmoid': ('sigmoid', '', torch.sigmoid),
}


def _packed_weight(linear: nn.Linear) -> torch.Tensor:
    weight = linear.weight
    entry = _PACKED_WEIGHTS.get(linear)
    if entry is None or entry[0] is not weight or entry[1] != (weight._version,
                                                               weight.data_ptr()):
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)
        entry = weight, (weight._version, weight.data_ptr()), packed
        _PACKED_WEIGHTS[linear] = entry
    return entry[2]


def linear_act(linear: nn.Linear, x: torch.Tensor, act: str = 'none') -> torch.Tensor:
    """``act(linear(x))`` for ``act`` in 'none', 'relu', 'gelu' (erf), 'sigmoid'; at CPU
    inference one oneDNN matmul on the layer's packed weight, the activation as its post-op.

    Args:
        linear (nn.Linear): the layer (any ``nn.Linear``, e.g. mmcv's inside an ``FFN``).
        x (Tensor): (..., in_features).
        act (str): the activation after it. Defaults to 'none'.
    """
    name, algorithm, plain = _LINEAR_ACTS[act]
    weight = linear.weight
    if (inference_fusion_enabled(x, linear) and x.numel() and weight.dtype == torch.float32
            and weight.device.type == 'cpu'):
        return torch.ops.mkldnn._linear_pointwise(x, _packed_weight(linear), linear.bias, name,
                                                  [], algorithm)
    return plain(F.linear(x, weight, linear.bias))


class Linear(nn.Linear):
    """``nn.Linear`` (same weights and keys) through :func:`linear_act`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_act(self, x)


def _ffn_layers(ffn: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``ffn.layers`` at inference: for mmcv's two-layer FFN with a GELU or ReLU, its Linears
    through :func:`linear_act` (the dropouts are identities at eval); else the layers as built.
    """
    layers = ffn.layers
    if ffn.num_fcs != 2 or len(layers) != 3 or len(layers[0]) != 3:
        return layers
    fc1, act, fc2 = layers[0][0], layers[0][1], layers[1]
    if type(act) is nn.GELU and act.approximate == 'none':
        name = 'gelu'
    elif type(act) is nn.ReLU:
        name = 'relu'
    else:
        return layers
    return lambda x: linear_act(fc2, linear_act(fc1, x, name))


# bytes of a conv block's hidden map per chunk of images at inference (a whole batch's can be
# hundreds of MiB; smaller and larger chunks ran about as fast: docs/speed.md)
HIDDEN_CHUNK_BYTES = 2 ** 24


def in_image_chunks(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                    hidden_channels: int, module: nn.Module) -> torch.Tensor:
    """``fn(x)`` for an ``fn`` that treats images independently and widens x to
    ``hidden_channels`` at x's resolution; at CPU inference (see
    :func:`inference_fusion_enabled`) computed over chunks of images whose hidden maps take at
    most ``HIDDEN_CHUNK_BYTES``, so that the whole batch's hidden maps are never allocated (the
    peak memory this saves: docs/speed.md). The same result.

    Args:
        fn (callable): (n, C, H, W) -> (n, C', H', W'), per image (e.g. BN in eval mode).
        x (Tensor): (B, C, H, W).
        hidden_channels (int): the widest map's channels inside ``fn``.
        module (nn.Module): whose mode decides (eval) with the input.
    """
    per_image = hidden_channels * math.prod(x.shape[2:]) * x.element_size()
    step = max(1, HIDDEN_CHUNK_BYTES // max(per_image, 1))
    if step >= x.shape[0] or not inference_fusion_enabled(x, module):
        return fn(x)
    return torch.cat([fn(x[i:i + step]) for i in range(0, x.shape[0], step)])


# rows of an FFN's input per chunk at inference, from the chunk's hidden layer (rows x hidden
# channels, fp32): 8 MiB. Much larger chunks are fresh mmaps, zero-filled page by page; much
# smaller ones are too short for the matmuls (docs/speed.md)
FFN_CHUNK_BYTES = 2 ** 23


def ffn_residual(ffn: nn.Module, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """``ffn(x, identity=identity)`` for an mmcv ``FFN`` with ``add_identity=True``; at
    inference on the CPU computed over chunks of rows, so that each chunk's hidden layer is
    still in cache when the activation and the second fc read it, and no hidden layer of the
    whole batch is allocated (see ``FFN_CHUNK_BYTES``), the Linears and a GELU or ReLU through
    :func:`linear_act`. Rows are independent, so the result is the same.

    Args:
        ffn (nn.Module): an ``mmcv.cnn.bricks.transformer.FFN``.
        x (Tensor): its input (..., C).
        identity (Tensor): what the FFN's output is added to, shaped like the output.
    """
    if not (ffn.add_identity and inference_fusion_enabled(x, ffn)):
        return ffn(x, identity=identity)
    # FFN.forward without its dropout_layer (identity at eval)
    layers = _ffn_layers(ffn)
    chunk = max(64, FFN_CHUNK_BYTES // (4 * ffn.feedforward_channels))
    if x.numel() // x.shape[-1] < 2 * chunk:
        return identity + ffn.gamma2(layers(x))
    rows, ids = x.reshape(-1, x.shape[-1]), identity.reshape(-1, identity.shape[-1])
    out = torch.empty_like(ids)
    for start in range(0, rows.shape[0], chunk):
        end = start + chunk
        torch.add(ids[start:end], ffn.gamma2(layers(rows[start:end])), out=out[start:end])
    return out.view(identity.shape)
