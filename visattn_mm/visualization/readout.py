"""What every hook read-out of :mod:`.mechanisms` shares: the kinds of picture per family, the
family of a backbone, forward hooks that come off again, one forward pass in eval mode, and the
mapping between image pixels and tokens.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

FAMILY_KINDS: Dict[str, Tuple[str, ...]] = {
    'PSLT': ('ladder', 'branch'),
    'FCViT': ('context',),
    'BViT': ('broad',),
    'BroadT2TViT': ('broad',),
    'BroadSwinTransformer': ('broad',),
    'DenseDeiT': ('dense_weights',),
    'DenseSwinTransformer': ('dense_weights',),
}
ALL_KINDS = tuple(sorted({k for kinds in FAMILY_KINDS.values() for k in kinds}))


def family_of(backbone: nn.Module) -> str:
    """The family name of a backbone (its class or the nearest base in :data:`FAMILY_KINDS`).

    Raises:
        ValueError: a backbone none of whose classes has pictures.
    """
    for cls in type(backbone).__mro__:
        if cls.__name__ in FAMILY_KINDS:
            return cls.__name__
    raise ValueError(f'{type(backbone).__name__} has no attention pictures; the families with '
                     f'pictures are {sorted(FAMILY_KINDS)}')


class Hooks:
    """Forward hooks that are removed when the ``with`` block ends."""

    def __init__(self) -> None:
        self.handles: List[Any] = []

    def forward(self, module: nn.Module, fn, with_kwargs: bool = False) -> None:
        self.handles.append(module.register_forward_hook(fn, with_kwargs=with_kwargs))

    def pre(self, module: nn.Module, fn) -> None:
        self.handles.append(module.register_forward_pre_hook(fn))

    def __enter__(self) -> 'Hooks':
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def run_eval(backbone: nn.Module, x: torch.Tensor) -> None:
    """One forward pass of ``x`` in eval mode without gradients; the mode is restored."""
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(x)
    finally:
        backbone.train(was_training)


def query_token(query: Optional[Tuple[float, float]], image_hw: Sequence[int],
                grid: Sequence[int]) -> Tuple[int, int]:
    """The token (row, col) of an (H, W) grid under an image pixel (y, x); None: the centre."""
    if query is None:
        return grid[0] // 2, grid[1] // 2
    ty = int(query[0] * grid[0] / image_hw[0])
    tx = int(query[1] * grid[1] / image_hw[1])
    return min(max(ty, 0), grid[0] - 1), min(max(tx, 0), grid[1] - 1)


def token_centre(token: Tuple[int, int], image_hw: Sequence[int],
                 grid: Sequence[int]) -> Tuple[int, int]:
    """The image pixel (y, x) at the centre of a token."""
    return (int((token[0] + .5) * image_hw[0] / grid[0]),
            int((token[1] + .5) * image_hw[1] / grid[1]))
