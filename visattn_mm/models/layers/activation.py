"""Activations that run in the input's memory order."""
import torch
import torch.nn.functional as F
from torch import nn


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is a 4-D map laid out channels-last (and not also contiguous, as 1x1 maps
    and single channels are)."""
    return (x.dim() == 4 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last))


def gelu(x: torch.Tensor, approximate: str = 'none') -> torch.Tensor:
    """``F.gelu(x, approximate=approximate)``; for a channels-last map computed over its
    (B, H, W, C) view.

    That view is contiguous: PyTorch hands GELU and its backward to oneDNN only for contiguous
    tensors and uses its slower strided kernel otherwise (docs/speed.md). Same values; the
    result (and its gradient) keeps x's layout.
    """
    if is_channels_last(x):
        return F.gelu(x.permute(0, 2, 3, 1), approximate=approximate).permute(0, 3, 1, 2)
    return F.gelu(x, approximate=approximate)


class GELU(nn.GELU):
    """``nn.GELU`` through :func:`gelu`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu(x, self.approximate)
