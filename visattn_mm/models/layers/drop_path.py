"""Stochastic depth that is added to its residual in one pass."""
from typing import Optional

import torch
from torch import nn


class DropPath(nn.Module):
    """Drop a residual branch per sample (stochastic depth), as mmcv's ``DropPath``.

    ``forward(x)`` is mmcv's (same random draw: ``floor(keep + U[0, 1))`` per sample, the kept
    ones scaled by 1 / keep). :meth:`add` also does the residual sum, and a per-channel layer
    scale, in one ``torch.addcmul``: mmcv's form ``x + DropPath(s * y)`` reads and writes the
    map three or four times, which on the CPU costs about as much as the branch's matmuls.

    Args:
        drop_prob (float): probability that a sample's branch is dropped. Defaults to 0.
    """

    def __init__(self, drop_prob: float = 0.) -> None:
        super().__init__()
        if not 0 <= drop_prob < 1:
            raise ValueError(f'drop_prob must be in [0, 1), got {drop_prob}')
        self.drop_prob = float(drop_prob)  # (a Python float: no data-dependent branch traced)

    def extra_repr(self) -> str:
        return f'drop_prob={self.drop_prob}'

    def _sample_scale(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """(B, 1, ..., 1): 0 for a dropped sample, 1 / keep for a kept one; None when off."""
        if not self.training or self.drop_prob == 0.:
            return None
        keep = 1 - self.drop_prob
        shape = (x.shape[0], ) + (1, ) * (x.dim() - 1)
        return (keep + torch.rand(shape, dtype=x.dtype, device=x.device)).floor_().div_(keep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self._sample_scale(x)
        return x if scale is None else x * scale

    def add(self, x: torch.Tensor, branch: torch.Tensor,
            layer_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``x + DropPath(layer_scale * branch)`` in one pass.

        Args:
            x (Tensor): the residual stream.
            branch (Tensor): the branch's output, shaped like ``x``.
            layer_scale (Tensor, optional): a factor broadcast against ``branch`` (e.g. a
                per-channel scale shaped (C, 1, 1)). Defaults to None.
        """
        scale = self._sample_scale(branch)
        if scale is None:
            scale = layer_scale
        elif layer_scale is not None:
            scale = scale * layer_scale  # (B, C, 1, 1): small
        return x + branch if scale is None else torch.addcmul(x, branch, scale)
