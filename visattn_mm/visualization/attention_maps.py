"""Attention and context maps of the package's backbones, read through forward hooks.

The read-outs live in :mod:`.mechanisms` (forward hooks, no model code changed); this module
names the kinds per family, composes a kind's panels (:func:`compute_picture`) and draws them
(:func:`render`, see :mod:`.drawing`).

Kinds per family (:data:`FAMILY_KINDS`):

* PSLT ``'branch'``: each ladder branch's own window attention for one query pixel;
  ``'ladder'``: the query's receptive field through the ladder: branch i's attention composed with
  the attentions of the branches whose outputs it takes as values (``A_i A_{i-1} .. A_0``,
  attention paths only, no residuals), which spreads over more windows from branch to branch
  under the progressive shift (0, -ws/2, +ws/2).
* FCViT ``'context'``: the global-context similarity map (standardised token-context similarity,
  after the per-head affine) of each context round, per stage.
* BViT, BroadT2TViT ``'broad'``: the cls token's broad attention
  ``softmax(sum_l q_l k_l^T / sqrt(d))`` over the patches, and each layer's own
  ``softmax(q_l k_l^T * scale)``; BroadSwinTransformer ``'broad'``: the same for a query pixel in
  its (unshifted) window of a stage.
* DenseDeiT, DenseSwinTransformer ``'dense_weights'``: the learned mixing weights ``w_ij``
  (layer i, earlier layer j < i; the upper triangle is unused and left blank).

Maps are averaged over heads (after the softmax, so softmax rows still sum to 1).
:func:`compute_picture` returns a kind's panels (or matrices) undrawn, for pictures composed of
several models (``tools/analysis/draw_pictures.py``: random weights beside trained ones).
"""
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .drawing import Panel, save_matrix_heatmaps, save_panels
from .mechanisms import (FAMILY_KINDS, broad_cls_attention, broad_swin_attention,
                         dense_mix_weights, family_of, fcvit_context_maps, pslt_ladder_attention,
                         token_centre)


def kinds_of(backbone: nn.Module) -> Tuple[str, ...]:
    """The picture kinds a backbone has."""
    return FAMILY_KINDS[family_of(backbone)]


def check_kind(backbone: nn.Module, kind: str) -> None:
    """Raise a ``ValueError`` naming the kinds the backbone has if ``kind`` is not one."""
    family = family_of(backbone)
    if kind not in FAMILY_KINDS[family]:
        raise ValueError(f'{family} has no {kind!r} picture; its kinds are '
                         f'{list(FAMILY_KINDS[family])}')


class Picture(NamedTuple):
    """What one kind of picture shows, before it is drawn.

    Args:
        kind (str): the kind.
        panels (list[Panel]): token maps over the image (empty for matrix kinds).
        cols (int): panels per row of its grid.
        nearest (bool): upsample token by token (True) or bilinearly (smooth maps).
        matrices (list[tuple[str, np.ndarray]]): (title, matrix) pairs of the kinds that
            draw weights rather than maps (``dense_weights``; they do not depend on the image).
    """
    kind: str
    panels: List[Panel]
    cols: int = 4
    nearest: bool = True
    matrices: Sequence[Tuple[str, np.ndarray]] = ()


def compute_picture(backbone: nn.Module, image_hw: Sequence[int], x: torch.Tensor, kind: str,
                    query: Optional[Tuple[float, float]] = None, stage: Optional[int] = None,
                    block: Optional[int] = None, cols: int = 4) -> Picture:
    """Compute one kind of picture (one forward pass of ``x``, no drawing).

    Args:
        backbone (nn.Module): the backbone.
        image_hw (Sequence[int]): the (H, W) of the image ``x`` was made from.
        x (Tensor): the image normalised, (1, 3, H, W).
        kind (str): one of the backbone's :func:`kinds_of`.
        query (tuple[float, float], optional): query pixel (y, x) for the query-based kinds.
            Defaults to None: the centre.
        stage (int, optional): the stage of PSLT / BroadSwin pictures. Defaults to None: 2.
        block (int, optional): the block of PSLT / FCViT pictures. Defaults to None: the last.
        cols (int): panels per row of the ``broad`` grid. Defaults to 4.

    Returns:
        Picture: its panels (or matrices) and how to lay them out.
    """
    check_kind(backbone, kind)
    family = family_of(backbone)
    stage = 2 if stage is None else stage
    block = -1 if block is None else block
    hw = tuple(image_hw[:2])
    if kind in ('ladder', 'branch'):
        res = pslt_ladder_attention(backbone, x, stage=stage, block=block, query=query)
        marker = token_centre(res['query'], hw, res['grid'])
        maps = res['composed'] if kind == 'ladder' else res['direct']
        what = 'field' if kind == 'ladder' else 'attn'
        # (coloured within the windows the row reaches; the rest of the map is 0)
        panels = [Panel(f'branch {i} {what} (shift {shift:+d})', m, marker, support_only=True)
                  for i, (m, (_, shift)) in enumerate(zip(maps, res['window_shift']))]
        return Picture(kind, panels, cols=len(panels))
    if kind == 'context':
        res = fcvit_context_maps(backbone, x, block=block)
        rounds = max(r['round'] for r in res) + 1
        panels = [Panel(f"stage {r['stage'] + 1} round {r['round'] + 1}", r['map'])
                  for r in res]
        return Picture(kind, panels, cols=rounds, nearest=False)
    if kind == 'broad':
        if family == 'BroadSwinTransformer':
            res = broad_swin_attention(backbone, x, stage=stage, query=query)
            marker = token_centre(res['query'], hw, res['grid'])
        else:
            res = broad_cls_attention(backbone, x)
            marker = None
        unit = 'block' if family == 'BroadSwinTransformer' else 'layer'
        window = family == 'BroadSwinTransformer'  # rows of one window, 0 elsewhere
        panels = [Panel(f'broad (all {unit}s)', res['broad'], marker, support_only=window)]
        panels += [Panel(f'{unit} {i + 1}', m, marker, support_only=window)
                   for i, m in enumerate(res['layers'])]
        return Picture(kind, panels, cols=cols)
    if kind == 'dense_weights':
        return Picture(kind, [], matrices=dense_mix_weights(backbone))
    raise AssertionError(kind)


def render(backbone: nn.Module, image: np.ndarray, x: torch.Tensor, kind: str, out_dir: str,
           prefix: str = '', query: Optional[Tuple[float, float]] = None,
           stage: Optional[int] = None, block: Optional[int] = None,
           cols: int = 4, path: Optional[str] = None) -> List[Tuple[str, Tuple[int, int]]]:
    """Compute one kind of picture and write it as PNG.

    Args:
        backbone (nn.Module): the backbone.
        image (np.ndarray): the input image (H, W, 3) uint8 RGB, the size of ``x``.
        x (Tensor): the same image normalised, (1, 3, H, W).
        kind (str): one of the backbone's :func:`kinds_of`.
        out_dir (str): the folder for the PNG files.
        prefix (str): the start of the file names. Defaults to ``''``.
        query (tuple[float, float], optional): query pixel (y, x) for the query-based kinds.
            Defaults to None: the centre.
        stage (int, optional): the stage of PSLT / BroadSwin pictures. Defaults to None: 2.
        block (int, optional): the block of PSLT / FCViT pictures. Defaults to None: the last.
        cols (int): panels per row. Defaults to 4.
        path (str, optional): the PNG file; ``out_dir`` and ``prefix`` are then unused.
            Defaults to None: ``<out_dir>/<prefix><family>_<kind>.png``.

    Returns:
        list[tuple[str, tuple[int, int]]]: (path, (height, width)) of each written PNG.
    """
    pic = compute_picture(backbone, image.shape[:2], x, kind, query=query, stage=stage,
                          block=block, cols=cols)
    if path is None:
        path = osp.join(out_dir, f'{prefix}{family_of(backbone).lower()}_{kind}.png')
    if pic.matrices:
        return [(path, save_matrix_heatmaps(pic.matrices, path))]
    return [(path, save_panels(image, pic.panels, path, cols=pic.cols, nearest=pic.nearest))]
