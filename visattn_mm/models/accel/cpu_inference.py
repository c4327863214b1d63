"""CPU inference forms: whole passes over memory saved at eval time.

On the CPU an elementwise pass over a feature map costs about as much as the conv or matmul that
made it (all memory bound; docs/speed.md). At inference these passes can go:

* Linear layers (:class:`PackedLinear`) run as oneDNN matmuls on their weight packed once into
  oneDNN's blocked layout (again only after the weight changed), with a following activation as
  a post-op (``F.linear``'s MKL repacks the weight in every call). The packed copy costs the
  weights' memory once more.
* conv -> GELU -> BatchNorm units (:class:`FusedConvUnit`): the GELU (erf) runs inside the conv
  as a oneDNN post-op (``mkldnn::_convolution_pointwise``, the op inductor emits for the same
  pattern); a BN is a fixed per-channel affine map, so one right after a conv folds into the
  conv's weight and bias, and one whose output feeds a 1x1 conv folds into that conv's input
  channels (not into a padded k x k conv: that conv would see the BN's shift, not zero, at the
  padding). Folded weights are made once per change of the weights and statistics.
* a conv followed by a GELU (:class:`FusedConvGelu`): one oneDNN op.
* mmcv FFNs (:class:`ChunkedFFN`) over chunks of rows, so that no hidden layer of the whole batch
  is allocated and each chunk's is read back while it is still in cache; their two Linears (and
  the GELU or ReLU) as above.
* blocks with a wide hidden map at the input's resolution (:class:`ImageChunks`: FCViT's channel
  mixer, PSLT's MobileNetV2 blocks) over chunks of images, so that the batch's hidden maps are
  never allocated.

Each form equals its plain module to float rounding (~1e-7 relative); ``tests/models/accel``
holds them to that. Two facts about the models live here, named by class: which blocks treat
images independently (``IMAGE_CHUNKED_BLOCKS``) and which conv units feed one another
(``CONV_CHAINS``). Where a unit leaves its BN to the next 1x1 unit, a forward hook on that unit
alone sees its output before the BN; the block's output is the same.
"""
import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from torch import nn

from ...compat import onednn_fusion_ops
from ..layers import ConvGelu, ConvGeluNorm, Linear
from . import Form, on_cpu, picker, plain_call

Affine = Tuple[torch.Tensor, torch.Tensor]  # per-channel (scale, shift)

# the blocks that treat images independently and widen them at the input's resolution
IMAGE_CHUNKED_BLOCKS = ('MV2BlockSE', 'ChannelMixer')

# conv units that follow one another inside a block: the BN of one may fold into the next 1x1
CONV_CHAINS: Dict[str, Tuple[str, ...]] = {
    'MV2BlockSE': ('expand', 'depthwise', 'project'),
    'LightMlp': ('pw1', 'dw', 'pw2'),
}

# bytes of a block's hidden map per chunk of images (a whole batch's can be hundreds of MiB;
# smaller and larger chunks ran about as fast: docs/speed.md)
HIDDEN_CHUNK_BYTES = 2 ** 24

# rows of an FFN's input per chunk, from the chunk's hidden layer (rows x hidden channels, fp32):
# 8 MiB. Much larger chunks are fresh mmaps, zero-filled page by page; much smaller ones are too
# short for the matmuls (docs/speed.md)
FFN_CHUNK_BYTES = 2 ** 23


def _inference_on_cpu(module: nn.Module) -> bool:
    return not module.training and on_cpu(module) and onednn_fusion_ops()


def _versions(*tensors: Optional[torch.Tensor]) -> tuple:
    """What changes when any of ``tensors`` is written to or replaced."""
    return tuple((t._version, t.data_ptr()) for t in tensors if t is not None)


# ------------------------------------------------------------------ Linear
_POST_OPS = {None: ('none', ''), 'relu': ('relu', ''), 'gelu': ('gelu', 'none'),
             'sigmoid': ('sigmoid', '')}


def packed_linear(linear: nn.Linear, x: torch.Tensor, cache: dict,
                  act: Optional[str] = None) -> torch.Tensor:
    """``act(linear(x))`` as one oneDNN matmul on the weight packed once (kept in ``cache``
    until the weight changes)."""
    weight = linear.weight
    if cache.get('key') != _versions(weight):
        cache['packed'] = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None)
        cache['key'] = _versions(weight)
    name, algorithm = _POST_OPS[act]
    return torch.ops.mkldnn._linear_pointwise(x, cache['packed'], linear.bias, name, [],
                                              algorithm)


class PackedLinear(Form):
    """:class:`~visattn_mm.models.layers.Linear` with its activation, as one oneDNN matmul."""

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        return packed_linear(self.module, x, self.cache, self.module.act)


@picker
def _pick_linear(module: nn.Module, context: dict) -> Optional[Form]:
    if isinstance(module, Linear) and module.act in _POST_OPS and _inference_on_cpu(module):
        return PackedLinear(module)
    return None


# ------------------------------------------------------------------ conv units
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


def _bn_tensors(norm: nn.Module) -> tuple:
    return norm.weight, norm.bias, norm.running_mean, norm.running_var


def onednn_conv(x: torch.Tensor, conv: nn.Conv2d, weight: torch.Tensor,
                bias: Optional[torch.Tensor], gelu: bool) -> torch.Tensor:
    """``conv``'s geometry with ``weight`` and ``bias``, the GELU (erf) as a post-op."""
    return torch.ops.mkldnn._convolution_pointwise(
        x, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation),
        conv.groups, 'gelu' if gelu else 'none', [], 'none' if gelu else None)


def _plain_geometry(conv: nn.Conv2d) -> bool:
    return conv.padding_mode == 'zeros' and not isinstance(conv.padding, str)


class FusedConvUnit(Form):
    """A :class:`~visattn_mm.models.layers.ConvGeluNorm` as one oneDNN conv: the GELU as a
    post-op, its BN folded into the conv (no GELU between them), or left to the next 1x1 unit of
    its block (``defer_norm``), and the BN of the unit ``before`` it folded in."""

    def __init__(self, module: ConvGeluNorm, before: Optional[ConvGeluNorm] = None,
                 defer_norm: bool = False) -> None:
        super().__init__(module)
        self.before, self.defer_norm = before, defer_norm

    def _weights(self) -> Tuple[torch.Tensor, Optional[torch.Tensor], bool]:
        """The conv's weight and bias with the BNs folded in, and whether the unit's own BN is
        still to be applied after it."""
        unit = self.module
        conv, norm = unit.conv, unit.norm
        in_norm = self.before.norm if self.before is not None else None
        key = (id(in_norm), self.defer_norm,
               *_versions(conv.weight, conv.bias, *_bn_tensors(norm),
                          *(_bn_tensors(in_norm) if in_norm is not None else ())))
        if self.cache.get('key') == key:
            return self.cache['weights']
        with torch.no_grad():
            weight, bias = conv.weight, conv.bias
            if in_norm is not None:  # W (s x + t) + b = (W s) x + (b + W t)
                scale, shift = bn_affine(in_norm)
                shift_out = torch.mv(weight.flatten(1), shift)
                weight = weight * scale[None, :, None, None]
                bias = shift_out if bias is None else bias + shift_out
            norm_after = not self.defer_norm
            if norm_after and unit.act is None:  # S (W x + b) + T
                scale, shift = bn_affine(norm)
                weight = weight * scale[:, None, None, None]
                bias = shift if bias is None else bias * scale + shift
                norm_after = False
            weights = (weight.contiguous(memory_format=_format_of(conv.weight)), bias,
                       norm_after)
        self.cache.update(key=key, weights=weights)
        return weights

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias, norm_after = self._weights()
        y = onednn_conv(x, self.module.conv, weight, bias, gelu=self.module.act is not None)
        return self.module.norm(y) if norm_after else y


def _format_of(t: torch.Tensor) -> torch.memory_format:
    return (torch.channels_last if not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format)


def _unit_fusable(unit: nn.Module) -> bool:
    return (isinstance(unit, ConvGeluNorm) and _inference_on_cpu(unit) and is_fixed_bn(unit.norm)
            and _plain_geometry(unit.conv))


@picker
def _pick_conv_unit(module: nn.Module, context: dict) -> Optional[Form]:
    if not _unit_fusable(module):
        return None
    return FusedConvUnit(module, *_chain_neighbours(module, context))


def _chain_neighbours(unit: nn.Module, context: dict) -> Tuple[Optional[nn.Module], bool]:
    """(the unit before ``unit`` whose BN folds into it, whether ``unit`` leaves its own BN to
    the next unit), from the chain of its block (``CONV_CHAINS``)."""
    chain = context.get(('chain', id(unit)))
    if chain is None:
        return None, False
    before, after = chain
    return (before if before is not None and _defers(before, unit) else None,
            after is not None and _defers(unit, after))


def _defers(unit: nn.Module, following: nn.Module) -> bool:
    """Whether ``unit``'s BN folds into ``following`` (a 1x1, stride-1, ungrouped conv unit
    after a GELU: the BN cannot fold into ``unit``'s own conv)."""
    return (unit.act is not None and following.takes_input_affine and _unit_fusable(unit)
            and _unit_fusable(following))


@picker
def _mark_chains(module: nn.Module, context: dict) -> None:
    """Tell the units of a block in ``CONV_CHAINS`` their neighbours (blocks come before their
    units in ``modules()``). Gives no form itself."""
    names = CONV_CHAINS.get(type(module).__name__)
    if names is not None:
        units = [getattr(module, name) for name in names]
        for i, unit in enumerate(units):
            context['chain', id(unit)] = (units[i - 1] if i else None,
                                          units[i + 1] if i + 1 < len(units) else None)
    return None


class FusedConvGelu(Form):
    """A :class:`~visattn_mm.models.layers.ConvGelu` as one oneDNN conv with a GELU post-op."""

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.module
        return onednn_conv(x, conv, conv.weight, conv.bias, gelu=True)


@picker
def _pick_conv_gelu(module: nn.Module, context: dict) -> Optional[Form]:
    if isinstance(module, ConvGelu) and _inference_on_cpu(module) and _plain_geometry(module):
        return FusedConvGelu(module)
    return None


# ------------------------------------------------------------------ chunks
class ImageChunks(Form):
    """A block that treats images independently, over chunks of images whose widest map
    (``hidden_channels`` at the input's resolution) takes at most ``HIDDEN_CHUNK_BYTES``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__(module)
        self.hidden_channels = max(m.out_channels for m in module.modules()
                                   if isinstance(m, nn.Conv2d))

    def fast(self, x: torch.Tensor) -> torch.Tensor:
        per_image = self.hidden_channels * math.prod(x.shape[2:]) * x.element_size()
        step = max(1, HIDDEN_CHUNK_BYTES // max(per_image, 1))
        if step >= x.shape[0]:
            return self.plain(x)
        return torch.cat([self.plain(x[i:i + step]) for i in range(0, x.shape[0], step)])


@picker
def _pick_image_chunks(module: nn.Module, context: dict) -> Optional[Form]:
    if type(module).__name__ in IMAGE_CHUNKED_BLOCKS and _inference_on_cpu(module):
        return ImageChunks(module)
    return None


class ChunkedFFN(Form):
    """mmcv's ``FFN`` with ``add_identity`` over chunks of rows, its two Linears (and a GELU
    or ReLU between them) as :func:`packed_linear`. Rows are independent: the same result."""

    def __init__(self, module: FFN, act: Optional[str]) -> None:
        super().__init__(module)
        self.act = act

    def __call__(self, x: torch.Tensor, identity: Optional[torch.Tensor] = None):
        if identity is None or self.module.training or plain_call(x) or not x.numel():
            return self.plain(x, identity=identity)
        return self.fast(x, identity)

    def _layers(self, rows: torch.Tensor) -> torch.Tensor:
        # FFN.forward without its dropouts (identities at eval)
        fc1, fc2 = self.module.layers[0][0], self.module.layers[1]
        hidden = packed_linear(fc1, rows, self.cache.setdefault('fc1', {}), self.act)
        return self.module.gamma2(packed_linear(fc2, hidden, self.cache.setdefault('fc2', {})))

    def fast(self, x: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        chunk = max(64, FFN_CHUNK_BYTES // (4 * self.module.feedforward_channels))
        if x.numel() // x.shape[-1] < 2 * chunk:
            return identity + self._layers(x)
        rows, ids = x.reshape(-1, x.shape[-1]), identity.reshape(-1, identity.shape[-1])
        out = torch.empty_like(ids)
        for start in range(0, rows.shape[0], chunk):
            end = start + chunk
            torch.add(ids[start:end], self._layers(rows[start:end]), out=out[start:end])
        return out.view(identity.shape)


def _ffn_activation(ffn: FFN) -> Optional[str]:
    """'gelu' or 'relu' for mmcv's two-layer FFN with that activation, else None."""
    layers = ffn.layers
    if ffn.num_fcs != 2 or len(layers) != 3 or len(layers[0]) != 3:
        return None
    act = layers[0][1]
    if type(act) is nn.GELU and act.approximate == 'none':
        return 'gelu'
    return 'relu' if type(act) is nn.ReLU else None


@picker
def _pick_ffn(module: nn.Module, context: dict) -> Optional[Form]:
    if isinstance(module, FFN) and module.add_identity and _inference_on_cpu(module):
        act = _ffn_activation(module)
        if act is not None:
            return ChunkedFFN(module, act)
    return None

