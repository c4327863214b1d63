"""What each family's mechanism computes on an image, read through forward hooks (the kinds of
:mod:`.attention_maps`): PSLT's ladder and branch window attentions, FCViT's context
similarity, the broad attention of BViT, BroadT2TViT and BroadSwinTransformer
(:mod:`.broad_attention`), and Dense attention's mixing weights. Each function returns numpy
arrays.

No model code is changed: forward hooks on existing modules catch their inputs or outputs during
one forward pass, and whatever the fused attention never materialises (the softmax weights) is
recomputed here from those tensors and the module's own weights. What the read-outs share (the
kinds per family, the hooks, the pixel-to-token mapping) is in :mod:`.readout`.
"""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .broad_attention import broad_cls_attention, broad_swin_attention
from .readout import ALL_KINDS, FAMILY_KINDS, Hooks, family_of, query_token, run_eval, token_centre

__all__ = [
    'ALL_KINDS', 'FAMILY_KINDS', 'broad_cls_attention', 'broad_swin_attention',
    'dense_mix_weights', 'family_of', 'fcvit_context_maps', 'pslt_ladder_attention',
    'token_centre'
]


# ---------------------------------------------------------------------------------- PSLT
def _window_attention_weights(w_msa: nn.Module, windows: torch.Tensor,
                              value: Optional[torch.Tensor], mask: Optional[torch.Tensor],
                              window_size: int) -> torch.Tensor:
    """softmax(q k^T * scale + B + M) of a PSLT window attention, from the windows it was
    given: (Bw, heads, N, N)."""
    q, k, _ = w_msa.project(windows, value)  # (Bw, h, N, d)
    logits = (q * w_msa.scale) @ k.transpose(-2, -1)
    logits = logits + w_msa.relative_position_bias(window_size)  # (h, N, N) broadcast
    if mask is not None:
        Bw, h, N, _ = logits.shape
        nW = mask.shape[0]
        logits = (logits.view(Bw // nW, nW, h, N, N) + mask[None, :, None]).view(Bw, h, N, N)
    return logits.softmax(dim=-1)


def _window_slots(H: int, W: int, window_size: int, shift: int) -> torch.Tensor:
    """For each window slot of a padded (Hp, Wp) map rolled by ``shift``: the flat index of the
    token it holds, (nW, N)."""
    from visattn_mm.models.layers import window_partition
    Hp, Wp = H + (-H) % window_size, W + (-W) % window_size
    index = torch.arange(Hp * Wp).view(1, Hp, Wp, 1)
    if shift:
        index = torch.roll(index, shifts=(shift, shift), dims=(1, 2))
    return window_partition(index, window_size).squeeze(-1)  # (nW, N)


def pslt_ladder_attention(backbone: nn.Module, x: torch.Tensor, stage: int = 2,
                          block: int = -1, query: Optional[Tuple[float, float]] = None
                          ) -> Dict[str, Any]:
    """The ladder branches' attention for one query pixel, direct and composed.

    Hooks: each branch's ``ShiftWindowMSA`` (the map size, so its window and shift) and its core
    ``w_msa`` (the windows, value windows and shift mask it gets). The branch's softmax weights
    are recomputed from those and the core's weights, placed into a token-to-token matrix
    ``M_i`` (padded map), and the query's row read out.

    Args:
        backbone (nn.Module): a :class:`~visattn_mm.models.PSLT`.
        x (Tensor): one normalised image (1, 3, H, W).
        stage (int): the ladder stage, 2 (stride 16) or 3 (stride 32). Defaults to 2.
        block (int): the ladder block of that stage. Defaults to -1 (the last).
        query (tuple[float, float], optional): the query pixel (y, x) of the input image.
            Defaults to None: the centre token.

    Returns:
        dict: ``grid`` (H_s, W_s), ``window_shift`` ((ws, shift) per branch), ``query`` (the
        token (row, col)), ``direct`` and ``composed``: one (H_s, W_s) map per branch (rows of a
        softmax: each sums to 1 unless the map was padded), ``matrices``: the (Hp*Wp, Hp*Wp)
        matrices ``M_i``.
    """
    if stage not in (2, 3) or not len(backbone.stages[stage].blocks):
        raise ValueError(f'PSLT stage {stage} has no ladder blocks; ladder stages are 2 and 3 '
                         f'with {[len(backbone.stages[s].blocks) for s in (2, 3)]} blocks')
    ladder = backbone.stages[stage].blocks[block]
    sizes: List[Tuple[int, int]] = []
    calls: List[Tuple[tuple, dict]] = []
    with Hooks() as hooks:
        for branch in ladder.branches:
            hooks.pre(branch.attn, lambda m, args: sizes.append(tuple(args[0].shape[1:3])))
            hooks.forward(branch.attn.w_msa,
                          lambda m, args, kwargs, out: calls.append((args, kwargs)),
                          with_kwargs=True)
        run_eval(backbone, x)
    H, W = sizes[0]
    token = query_token(query, x.shape[-2:], (H, W))
    matrices, shapes = [], []
    with torch.no_grad():
        for branch, (args, kwargs) in zip(ladder.branches, calls):
            ws, shift = branch.attn.window_and_shift(H, W)
            if kwargs.get('window_size', ws) != ws:
                raise RuntimeError('PSLT window bookkeeping changed: update the visualiser')
            attn = _window_attention_weights(branch.attn.w_msa, args[0], kwargs.get('v'),
                                             kwargs.get('mask'), ws).mean(1)  # (Bw, N, N)
            slots = _window_slots(H, W, ws, shift)  # (nW, N)
            Hp, Wp = H + (-H) % ws, W + (-W) % ws
            M = torch.zeros(Hp * Wp, Hp * Wp, dtype=attn.dtype)
            # first image's windows; (query slot, key slot) -> (query token, key token)
            M[slots[:, :, None], slots[:, None, :]] = attn[:slots.shape[0]].cpu()
            matrices.append(M)
            shapes.append((Hp, Wp, ws, shift))
    # every branch of a block sees the same map, hence the same padding
    Hp, Wp = shapes[0][:2]
    real = torch.zeros(Hp, Wp, dtype=torch.bool)
    real[:H, :W] = True
    real = real.flatten().to(matrices[0].dtype)
    p = token[0] * Wp + token[1]

    def crop(row: torch.Tensor) -> np.ndarray:
        return row.view(Hp, Wp)[:H, :W].numpy().copy()

    direct, composed = [], []
    for i, M in enumerate(matrices):
        direct.append(crop(M[p]))
        row = M[p]
        for prev in reversed(matrices[:i]):  # the value of branch i is branch i-1's output
            row = (row * real) @ prev  # padded tokens carry no value
        composed.append(crop(row))
    return dict(grid=(H, W), window_shift=[s[2:] for s in shapes], query=token,
                direct=direct, composed=composed, matrices=matrices)


# ---------------------------------------------------------------------------------- FCViT
def _context_similarity(gc_module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """FCViT ``GlobalContext`` steps 1-2 on its input: the standardised similarity after the
    per-head affine, (B, heads, H, W)."""
    B, _, H, W = x.shape
    sim = gc_module.similarity(x)  # (B, h, H*W)
    return sim.view(B, gc_module.num_heads, H, W)


def fcvit_context_maps(backbone: nn.Module, x: torch.Tensor, block: int = -1
                       ) -> List[Dict[str, Any]]:
    """The global-context similarity maps of one block per stage, per context round.

    Hooks: the input of each context round (``token_mixer.rounds[r]``, which is its
    ``GlobalContext``'s input); the similarity is recomputed from it with
    ``GlobalContext.similarity``.

    Args:
        backbone (nn.Module): an :class:`~visattn_mm.models.FCViT`.
        x (Tensor): one normalised image (1, 3, H, W).
        block (int): the block of every stage. Defaults to -1 (the last).

    Returns:
        list[dict]: per (stage, round): ``stage``, ``block``, ``round``, ``map`` (H_s, W_s), the
        mean over heads, ``heads`` (heads, H_s, W_s).
    """
    inputs: Dict[Tuple[int, int], torch.Tensor] = {}
    picked = []
    with Hooks() as hooks:
        for s, stage in enumerate(backbone.stages):
            index = block % len(stage)
            for r, rnd in enumerate(stage[index].token_mixer.rounds):
                picked.append((s, index, r, rnd.context))
                # the round's input is its context's input (the round adds the context to it)
                hooks.forward(rnd, lambda m, args, out, key=(s, r):
                              inputs.__setitem__(key, args[0]))
        run_eval(backbone, x)
    results = []
    with torch.no_grad():
        for s, index, r, module in picked:
            heads = _context_similarity(module, inputs[(s, r)])[0].cpu()
            results.append(dict(stage=s, block=index, round=r, map=heads.mean(0).numpy(),
                                heads=heads.numpy()))
    return results


# ---------------------------------------------------------------------------------- dense
def dense_mix_weights(backbone: nn.Module) -> List[Tuple[str, np.ndarray]]:
    """The learned dense-attention weights as (layers x earlier layers) matrices.

    Entry (i, j) is layer i's weight ``mix_weight[j]`` on layer j's value for j < i (the only
    ones the forward uses); the rest is NaN.

    Args:
        backbone (nn.Module): a :class:`~visattn_mm.models.DenseDeiT` (one matrix over its
            layers) or :class:`~visattn_mm.models.DenseSwinTransformer` (one per stage).

    Returns:
        list[tuple[str, np.ndarray]]: (title, (n, n) matrix) pairs (for DenseSwin the stages
        of two or more blocks).
    """
    family = family_of(backbone)
    if family == 'DenseDeiT':
        groups = [('DenseDeiT layers', [layer.attn.mix_weight for layer in backbone.layers])]
    elif family == 'DenseSwinTransformer':
        groups = [(f'stage {s + 1}', [blk.attn.w_msa.mix_weight for blk in st.blocks])
                  for s, st in enumerate(backbone.stages) if len(st.blocks) > 1]
        # (a stage of one block has no earlier block to mix)
    else:
        raise ValueError(f'{family} has no dense-attention weights')
    result = []
    for title, weights in groups:
        n = len(weights)
        mat = np.full((n, n), np.nan)
        for i, w in enumerate(weights):
            w = w.detach().cpu().float().numpy()
            mat[i, :i] = w[:i]
        result.append((title, mat))
    return result
