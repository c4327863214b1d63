"""Plain parts with their activation: a Linear, a conv, and a conv -> GELU -> norm unit.

Each is the ``nn`` module it extends (same weights and state-dict keys) followed by its
activation, so that a model says what follows what in one module; the acceleration seam
(:mod:`visattn_mm.models.accel`) may then run the pair as one kernel.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import nn

from .activation import GELU, gelu

ACTIVATIONS = {None: lambda x: x, 'relu': F.relu, 'gelu': gelu, 'sigmoid': torch.sigmoid}


def _check_act(act: Optional[str]) -> Optional[str]:
    if act not in ACTIVATIONS:
        raise ValueError(f'unknown activation {act!r}; choose one of {list(ACTIVATIONS)}')
    return act


class Linear(nn.Linear):
    """``act(nn.Linear(x))`` for ``act`` in None, 'relu', 'gelu' (erf), 'sigmoid'.

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        act (str, optional): the activation after it. Defaults to None.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 act: Optional[str] = None) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.act = _check_act(act)

    def extra_repr(self) -> str:
        return super().extra_repr() + (f', act={self.act}' if self.act else '')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ACTIVATIONS[self.act](F.linear(x, self.weight, self.bias))


class ConvGelu(nn.Conv2d):
    """``GELU(nn.Conv2d(x))`` (erf GELU); the arguments are ``nn.Conv2d``'s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu(super().forward(x))


class ConvGeluNorm(nn.Module):
    """conv -> GELU -> norm (``act=False``: conv -> norm); keys ``conv``, ``norm``.

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
        x = self.conv(x)
        return self.norm(self.act(x) if self.act is not None else x)
