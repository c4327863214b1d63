"""What each family's mechanism computes on an image, read through forward hooks (the kinds of
:mod:`.attention_maps`): PSLT's ladder and branch window attentions, FCViT's context
similarity, the broad attention of BViT, BroadT2TViT and BroadSwinTransformer, and Dense
attention's mixing weights. Each function returns numpy arrays.

No model code is changed: forward hooks on existing modules catch their inputs or outputs during
one forward pass, and whatever the fused attention never materialises (the softmax weights) is
recomputed here from those tensors and the module's own weights.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
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



class _Hooks:
    """Forward hooks that are removed when the ``with`` block ends."""

    def __init__(self) -> None:
        self.handles: List[Any] = []

    def forward(self, module: nn.Module, fn, with_kwargs: bool = False) -> None:
        self.handles.append(module.register_forward_hook(fn, with_kwargs=with_kwargs))

    def pre(self, module: nn.Module, fn) -> None:
        self.handles.append(module.register_forward_pre_hook(fn))

    def __enter__(self) -> '_Hooks':
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()


def _run(backbone: nn.Module, x: torch.Tensor) -> None:
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            backbone(x)
    finally:
        backbone.train(was_training)


def _query_token(query: Optional[Tuple[float, float]], image_hw: Sequence[int],
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
    with _Hooks() as hooks:
        for branch in ladder.branches:
            hooks.pre(branch.attn, lambda m, args: sizes.append(tuple(args[0].shape[1:3])))
            hooks.forward(branch.attn.w_msa,
                          lambda m, args, kwargs, out: calls.append((args, kwargs)),
                          with_kwargs=True)
        _run(backbone, x)
    H, W = sizes[0]
    token = _query_token(query, x.shape[-2:], (H, W))
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
    with _Hooks() as hooks:
        for s, stage in enumerate(backbone.stages):
            index = block % len(stage)
            for r, rnd in enumerate(stage[index].token_mixer.rounds):
                picked.append((s, index, r, rnd.context))
                # the round's input is its context's input (the round adds the context to it)
                hooks.forward(rnd, lambda m, args, out, key=(s, r):
                              inputs.__setitem__(key, args[0]))
        _run(backbone, x)
    results = []
    with torch.no_grad():
        for s, index, r, module in picked:
            heads = _context_similarity(module, inputs[(s, r)])[0].cpu()
            results.append(dict(stage=s, block=index, round=r, map=heads.mean(0).numpy(),
                                heads=heads.numpy()))
    return results


# ---------------------------------------------------------------------------------- broad
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

    Returns:
        dict: ``grid`` (h, w); ``broad_row`` (1 + h*w,) and ``layer_rows`` (L of them): softmax
        rows over all tokens (cls first), each summing to 1; ``broad`` and ``layers``: the
        same over the patches as (h, w) maps; ``qs``, ``ks``, ``vs``: the hooked per-layer
        tensors (B, heads, N, d).
    """
    family = family_of(backbone)
    qs, ks, vs, grid = [], [], [], []
    with _Hooks() as hooks:
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
            extra = 1
        elif family == 'BroadT2TViT':
            if backbone.cls_token is None:
                raise ValueError('BroadT2TViT without a cls token has no cls attention picture')
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
            extra = backbone.num_extra_tokens
        else:
            raise ValueError(f'{family} has no cls-token broad attention')
        _run(backbone, x)
    with torch.no_grad():
        broad, per_layer = _cls_rows(qs, ks, layer_scales, broad_scale)
    h, w = grid[0]

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
    with _Hooks() as hooks:
        hooks.forward(backbone.patch_embed,
                      lambda m, args, out: sizes.__setitem__(0, tuple(out[1])))
        for s, st in enumerate(stages):
            if st.downsample is not None:
                hooks.forward(st.downsample,
                              lambda m, args, out, s=s: sizes.__setitem__(s + 1, tuple(out[1])))
        for blk in stages[stage].blocks:
            hooks.forward(blk.attn.w_msa.qkv, lambda m, args, out: maps.append(out))
        _run(backbone, x)
    H, W = sizes[stage]  # the map the stage's blocks see
    w_msa = stages[stage].blocks[-1].attn.w_msa
    ws = stages[stage].blocks[-1].attn.window_size
    heads, d = w_msa.num_heads, w_msa.head_dims
    token = _query_token(query, x.shape[-2:], (H, W))
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


# ---------------------------------------------------------------------------------- render
