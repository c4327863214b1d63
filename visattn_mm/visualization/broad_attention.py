"""Broad attention read through forward hooks: the cls token's row over every layer of BViT and
BroadT2TViT, and a query pixel's row in its window for BroadSwinTransformer (see
:mod:`.mechanisms`). Each function returns numpy arrays.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .readout import Hooks, family_of, query_token, run_eval


def _cls_rows(qs: Sequence[torch.Tensor], ks: Sequence[torch.Tensor],
              layer_scales: Sequence[float], broad_scale: float
              ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """The cls token's broad attention row and per-layer rows, each (N,), averaged over heads.

    qs, ks: (B, heads, N, d) per layer; the first image and token 0 are used.
    """
    logits = [(q[0, :, :1] @ k[0].transpose(-2, -1))[:, 0] for q, k in zip(qs, ks)]  # (h, N)
    broad = (sum(logits) * broad_scale).softmax(-1).mean(0)
    layers = [(lg * s).softmax(-1).mean(0) for lg, s in zip(logits, layer_scales)]
    return broad, layers


def broad_cls_attention(backbone: nn.Module, x: torch.Tensor) -> Dict[str, Any]:
    """The cls token's broad attention over all layers and each layer's own attention.

    BViT: hooks on each layer's attention (it returns q, k, v); the grid from
    ``patch_grid``. BroadT2TViT: hooks on each encoder layer's ``attn.qkv`` projection and on
    ``tokens_to_token`` (the grid).

    Args:
        backbone (nn.Module): a :class:`~visattn_mm.models.BViT` or
            :class:`~visattn_mm.models.BroadT2TViT` (with a cls token).
        x (Tensor): one normalised image (1, 3, H, W).

    Raises:
        ValueError: a backbone of another family, or one built with ``with_cls_token=False``.

    Returns:
        dict: ``grid`` (h, w); ``broad_row`` (1 + h*w,) and ``layer_rows`` (L of them): softmax
        rows over all tokens (cls first), each summing to 1; ``broad`` and ``layers``: the
        same over the patches as (h, w) maps; ``qs``, ``ks``, ``vs``: the hooked per-layer
        tensors (B, heads, N, d).
    """
    family = family_of(backbone)
    if family in ('BViT', 'BroadT2TViT') and backbone.cls_token is None:
        # the picture is the cls token's row; without one, row 0 would be a patch's
        raise ValueError(
            f'{type(backbone).__name__} was built with with_cls_token=False: it has no cls '
            'token, so there is no cls-token broad attention to draw; the broad picture needs a '
            'BViT or BroadT2TViT with a cls token (with_cls_token=True, the default)')
    qs, ks, vs, grid = [], [], [], []
    with Hooks() as hooks:
        if family == 'BViT':
            layers = backbone.layers
            for layer in layers:
                def keep(m, args, out):
                    q, k, v = out[1]
                    qs.append(q), ks.append(k), vs.append(v)
                hooks.forward(layer.attn, keep)
            grid.append(backbone.patch_grid(tuple(x.shape[-2:])))
            layer_scales = [layer.attn.scale for layer in layers]
            broad_scale = backbone.head_dims ** -0.5
        elif family == 'BroadT2TViT':
            layers = backbone.encoder
            for layer in layers:
                def keep(m, args, out, attn=layer.attn):
                    B, N, _ = out.shape
                    q, k, v = out.reshape(B, N, 3, attn.num_heads, attn.head_dims) \
                        .permute(2, 0, 3, 1, 4).unbind(0)
                    qs.append(q), ks.append(k), vs.append(v)
                hooks.forward(layer.attn.qkv, keep)
            hooks.forward(backbone.tokens_to_token,
                          lambda m, args, out: grid.append(tuple(out[1])))
            # the layers' own scale (set by fix_attention_scale), the broad one d^-1/2
            layer_scales = [getattr(layer.attn.scaled_dot_product_attention, 'keywords', {})
                            .get('scale', layer.attn.head_dims ** -0.5) for layer in layers]
            broad_scale = layers[-1].attn.head_dims ** -0.5
        else:
            raise ValueError(f'{family} has no cls-token broad attention')
        run_eval(backbone, x)
    with torch.no_grad():
        broad, per_layer = _cls_rows(qs, ks, layer_scales, broad_scale)
    h, w = grid[0]
    extra = backbone.num_extra_tokens

    def patches(row: torch.Tensor) -> np.ndarray:
        return row[extra:].reshape(h, w).cpu().numpy()

    return dict(grid=(h, w), broad_row=broad.cpu().numpy(),
                layer_rows=[r.cpu().numpy() for r in per_layer], broad=patches(broad),
                layers=[patches(r) for r in per_layer], qs=qs, ks=ks, vs=vs)


def broad_swin_attention(backbone: nn.Module, x: torch.Tensor, stage: int = 2,
                         query: Optional[Tuple[float, float]] = None) -> Dict[str, Any]:
    """BroadSwin's broad attention of a query pixel in its unshifted window of one stage.

    Hooks: ``patch_embed`` and the patch mergings (each stage's map size) and every block's
    ``attn.w_msa.qkv`` of the stage (its q, k, v maps, padded, unshifted).

    Args:
        backbone (nn.Module): a :class:`~visattn_mm.models.BroadSwinTransformer`.
        x (Tensor): one normalised image (1, 3, H, W).
        stage (int): the stage. Defaults to 2.
        query (tuple[float, float], optional): the query pixel (y, x). Defaults to None: the
            centre token.

    Returns:
        dict: ``grid`` (H_s, W_s), ``query`` token, ``window`` ws, ``broad`` and ``layers``
        (per block) as (H_s, W_s) maps: softmax rows over the window (zero outside it).
    """
    stages = backbone.stages
    if not 0 <= stage < len(stages):
        raise ValueError(f'stage must be in 0..{len(stages) - 1}, got {stage}')
    sizes: Dict[int, Tuple[int, int]] = {}
    maps: List[torch.Tensor] = []
    with Hooks() as hooks:
        hooks.forward(backbone.patch_embed,
                      lambda m, args, out: sizes.__setitem__(0, tuple(out[1])))
        for s, st in enumerate(stages):
            if st.downsample is not None:
                hooks.forward(st.downsample,
                              lambda m, args, out, s=s: sizes.__setitem__(s + 1, tuple(out[1])))
        for blk in stages[stage].blocks:
            hooks.forward(blk.attn.w_msa.qkv, lambda m, args, out: maps.append(out))
        run_eval(backbone, x)
    H, W = sizes[stage]  # the map the stage's blocks see
    w_msa = stages[stage].blocks[-1].attn.w_msa
    ws = stages[stage].blocks[-1].attn.window_size
    heads, d = w_msa.num_heads, w_msa.head_dims
    token = query_token(query, x.shape[-2:], (H, W))
    wy, wx = token[0] // ws, token[1] // ws
    n = (token[0] % ws) * ws + token[1] % ws
    logits = []
    with torch.no_grad():
        for out in maps:
            q, k, _ = out[0].chunk(3, dim=-1)  # (Hp, Wp, C)
            win = (slice(wy * ws, (wy + 1) * ws), slice(wx * ws, (wx + 1) * ws))
            qw = q[win].reshape(ws * ws, heads, d).transpose(0, 1)  # (h, N, d)
            kw = k[win].reshape(ws * ws, heads, d).transpose(0, 1)
            logits.append((qw[:, n:n + 1] @ kw.transpose(-2, -1))[:, 0])  # (h, N)
        scale = d ** -0.5
        broad = (sum(logits) * scale).softmax(-1).mean(0)
        layers = [(lg * w_msa.scale).softmax(-1).mean(0) for lg in logits]
    Hp, Wp = maps[0].shape[1:3]

    def place(row: torch.Tensor) -> np.ndarray:
        full = torch.zeros(Hp, Wp)
        full[wy * ws:(wy + 1) * ws, wx * ws:(wx + 1) * ws] = row.view(ws, ws).cpu()
        return full[:H, :W].numpy()

    return dict(grid=(H, W), query=token, window=ws, broad_row=broad.cpu().numpy(),
                layer_rows=[r.cpu().numpy() for r in layers], broad=place(broad),
                layers=[place(r) for r in layers])
