"""Size-dependent shortcuts that a tracer must not record.

A forward that skips a zero pad, or reuses the position table when the patch grid is the one it
was made for, is right in eager mode; a tracer (``torch.onnx.export(..., dynamo=False)``,
``torch.jit.trace``) records only the branch the example input took, so the graph would be fixed
to the example's size. Under a tracer these shortcuts are not taken: a zero pad is a no-op and a
bicubic resize to the same grid is the identity, so the numbers are the same, and the recorded
ops follow any input size.
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import resize_pos_embed as _mmp_resize_pos_embed

from ...compat import is_compiling


def is_tracing() -> bool:
    """Whether a tracer records this forward (TorchScript-based ONNX export, ``jit.trace``)."""
    return torch.jit.is_tracing()


def records_graph() -> bool:
    """Whether a tracer or the compiler (dynamo) records this forward as a graph."""
    return is_tracing() or is_compiling()


def pad_to_multiple(x: torch.Tensor, multiple: int, dims: Sequence[int] = (-2, -1)
                    ) -> torch.Tensor:
    """``x`` zero-padded at the end of each of ``dims`` to a multiple of ``multiple``; x itself
    when nothing is missing (under a tracer always a pad, so that it follows any size).

    Args:
        x (Tensor): the tensor.
        multiple (int): the size each dim is rounded up to a multiple of.
        dims (Sequence[int]): the dims to pad, each negative (from the end). Defaults to the
            last two (H, W of a map).
    """
    pads = [0] * (2 * -min(dims))
    for dim in dims:
        pads[2 * (-dim - 1) + 1] = (-x.shape[dim]) % multiple
    if not any(pads) and not is_tracing():
        return x
    return F.pad(x, pads)


def resize_pos_embed(pos_embed: torch.Tensor, src_shape: Sequence[int],
                     dst_shape: Sequence[int], mode: str = 'bicubic',
                     num_extra_tokens: int = 1) -> torch.Tensor:
    """mmpretrain's ``resize_pos_embed``, which under a tracer always interpolates.

    Args:
        pos_embed (Tensor): (1, num_extra_tokens + h * w, C).
        src_shape (Sequence[int]): the table's grid (h, w).
        dst_shape (Sequence[int]): the wanted grid (traced sizes under a tracer).
        mode (str): the interpolation. Defaults to ``'bicubic'``.
        num_extra_tokens (int): tokens before the grid (cls token). Defaults to 1.

    Returns:
        Tensor: (1, num_extra_tokens + dst_h * dst_w, C).
    """
    if not is_tracing():  # (the table itself when the grids are the same)
        return _mmp_resize_pos_embed(pos_embed, src_shape, dst_shape, mode=mode,
                                     num_extra_tokens=num_extra_tokens)
    C = pos_embed.shape[-1]
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    grid = grid.reshape(1, src_shape[0], src_shape[1], C).permute(0, 3, 1, 2)  # (1, C, h, w)
    grid = F.interpolate(grid.float(), size=tuple(dst_shape), mode=mode, align_corners=False)
    grid = grid.flatten(2).transpose(1, 2).to(pos_embed.dtype)  # (1, dst_h * dst_w, C)
    return torch.cat((extra, grid), dim=1)
