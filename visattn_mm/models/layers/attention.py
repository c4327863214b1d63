"""The attention core shared by every family, and the two cross-layer mechanisms built on it.

* :func:`scaled_dot_product` is the one place where ``softmax(q k^T * scale + bias) v`` is computed:
  either by ``F.scaled_dot_product_attention`` (fused) or written out as the formula reads (the
  reference path, also used for export); :class:`MultiheadAttention` and the window attention
  choose the path once, in ``__init__``.
* :class:`MultiheadAttention` is a plain multi-head self-attention that returns its per-head
  q, k, v beside its output and can attend over a value it is handed (``value_fn``).
* :func:`broad_attention` (BViT) and :func:`dense_value_mix` (Dense attention) combine the q, k, v
  of several layers; both are used by the plain-ViT and the Swin forms.
* :class:`BroadAttention` and :class:`DenseValueStore` are the parts a model holds for them; the
  acceleration seam (:mod:`visattn_mm.models.accel.cross_layer`) may give them leaner forms.
"""
import os
from typing import Callable, Final, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .units import Linear

QKV = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def use_fused_attn() -> bool:
    """Whether new attention modules use ``F.scaled_dot_product_attention``.

    On by default; ``VISATTN_FUSED_ATTN=0`` in the environment selects the written-out path
    (for debugging or export).
    """
    return (hasattr(F, 'scaled_dot_product_attention')
            and os.environ.get('VISATTN_FUSED_ATTN', '1') != '0')


def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                       bias: Optional[torch.Tensor] = None, dropout_p: float = 0.,
                       fused: bool = True) -> torch.Tensor:
    """``softmax(q k^T * scale + bias) v``; the scale **multiplies** the logits.

    Args:
        q (Tensor): (..., N, d).
        k (Tensor): (..., M, d).
        v (Tensor): (..., M, d_v); d_v may differ from d.
        scale (float): the factor on the logits.
        bias (Tensor, optional): additive term broadcastable to (..., N, M). Defaults to None.
        dropout_p (float): dropout on the attention weights; pass 0 outside training.
            Defaults to 0.
        fused (bool): one ``F.scaled_dot_product_attention`` call, or the formula written out.
            Defaults to True.

    Returns:
        Tensor: (..., N, d_v).
    """
    if fused and q.device.type == 'cpu' and (
            v.shape[-1] != q.shape[-1]
            or bias is not None and bias.requires_grad and torch.is_grad_enabled()):
        # CPU's fused kernel needs v as wide as q, and returns no gradient for a mask: else SDPA
        # takes its math fallback, slower than the formula written out below
        fused = False
    if fused:
        if bias is not None:
            # CPU's fused kernel takes only a mask with q's number of dims: a (h, N, N) mask for
            # 4-D q falls back to the much slower math path
            bias = bias.to(q.dtype).reshape((1,) * (q.dim() - bias.dim()) + bias.shape)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p,
                                              scale=scale)
    attn = (q * scale) @ k.transpose(-2, -1)  # (..., N, M)
    if bias is not None:
        attn = attn + bias
    attn = attn.softmax(dim=-1)
    if dropout_p > 0:
        attn = F.dropout(attn, dropout_p)
    return attn @ v


class MultiheadAttention(nn.Module):
    """Multi-head self-attention that also returns its per-head q, k, v.

    ``out = Proj(concat_h softmax(q_h k_h^T * scale) v'_h)`` with ``v' = value_fn(v)`` when a
    ``value_fn`` is given (Dense attention mixes earlier layers' values in there), else ``v``.

    Args:
        embed_dims (int): input and output channels C.
        num_heads (int): heads H.
        head_dims (int, optional): channels per head d; the inner width is H * d. Defaults to
            C // H, which then must divide evenly.
        qkv_bias (bool): bias in the q, k, v projection. Defaults to True.
        qk_scale (float, optional): factor the logits are multiplied by. Defaults to d ** -0.5.
        attn_drop (float): dropout on the attention weights (training only). Defaults to 0.
        proj_drop (float): dropout after the output projection. Defaults to 0.
    """

    fused_attn: Final[bool]

    def __init__(self, embed_dims: int, num_heads: int, head_dims: Optional[int] = None,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None, attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        if head_dims is None:
            if embed_dims % num_heads:
                raise ValueError(f'num_heads {num_heads} does not divide embed_dims {embed_dims}; '
                                 f'choose a divisor of {embed_dims} or give head_dims')
            head_dims = embed_dims // num_heads
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = head_dims
        self.scale = qk_scale or head_dims ** -0.5
        self.attn_drop = attn_drop
        self.fused_attn = use_fused_attn()
        inner = num_heads * head_dims
        self.qkv = Linear(embed_dims, 3 * inner, bias=qkv_bias)
        self.proj = Linear(inner, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'head_dims={self.head_dims}, fused_attn={self.fused_attn}')

    def project_qkv(self, x: torch.Tensor) -> QKV:
        """x: (B, N, C) -> q, k, v, each (B, H, N, d)."""
        B, N, _ = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dims)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, N, d)
        return q, k, v

    def forward(self, x: torch.Tensor,
                value_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                query_rows: Optional[int] = None) -> Tuple[torch.Tensor, QKV]:
        """
        Args:
            x (Tensor): (B, N, C).
            value_fn (callable, optional): v (B, H, N, d) -> the value attended over.
            query_rows (int, optional): compute the output of the first ``query_rows`` tokens
                only (all N are still attended over). Defaults to None: all N.

        Returns:
            tuple: the output (B, N', C), N' = ``query_rows`` or N, and this layer's (q, k, v),
            each (B, H, N, d) (all tokens).
        """
        q, k, v = self.project_qkv(x)
        value = v if value_fn is None else value_fn(v)
        query = q if query_rows is None else q[:, :, :query_rows]
        B, _, N, _ = query.shape
        out = scaled_dot_product(query, k, value, self.scale,
                                 dropout_p=self.attn_drop if self.training else 0.,
                                 fused=self.fused_attn)  # (B, H, N, d)
        out = out.transpose(1, 2).reshape(B, N, self.num_heads * self.head_dims)
        return self.proj_drop(self.proj(out)), (q, k, v)


def broad_attention(qs: Sequence[torch.Tensor], ks: Sequence[torch.Tensor],
                    vs: Sequence[torch.Tensor], scale: float, out_dims: int,
                    fused: bool = True) -> torch.Tensor:
    """BViT's parameter-free attention over the q, k, v of L layers, then BPool.

    With ``Q = [q_1 .. q_L]`` (joined on the channel axis, likewise K and V)::

        A   = softmax(Q K^T * scale) = softmax(sum_l q_l k_l^T * scale)     (one map per head)
        O   = A V                                                          (N, L * d) per head
        out = BPool(O)   adaptive average pooling over the (head, layer, d)-ordered channels

    computed as one attention over the joined tensors: no per-layer map is ever formed. When
    every pooling window lies inside one head (all released forms), V is pooled before the
    attention (``A BPool(V)``, the same numbers up to rounding). The seam's ``BroadAttentionSum``
    gathers the same inputs layer by layer, for inference.

    Args:
        qs, ks, vs (Sequence[Tensor]): L tensors each, (B', H, N, d); the qs may hold fewer
            rows N_q (the outputs of those queries only).
        scale (float): the logit factor, d ** -0.5 in BViT (d of one layer, not L * d).
        out_dims (int): channels after BPool.
        fused (bool): see :func:`scaled_dot_product`. Defaults to True.

    Returns:
        Tensor: (B', N_q, out_dims).
    """
    q, k, v = (torch.cat(list(t), dim=-1) for t in (qs, ks, vs))  # (B', H, N, L*d) each
    return _attend_and_pool(lambda value: scaled_dot_product(q, k, value, scale, fused=fused),
                            v, out_dims)


def _attend_and_pool(attend: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor,
                     out_dims: int) -> torch.Tensor:
    """``BPool(attend(v))`` for joined values v (B', H, N, L*d) -> (B', N_q, out_dims)."""
    B, H, _, Ld = v.shape
    window = H * Ld // out_dims
    if (H * Ld) % out_dims == 0 and Ld % window == 0:
        # Equal BPool windows (AdaptiveAvgPool1d's), each inside one head: the pooling averages
        # channels and A mixes tokens, so BPool(A V) = A BPool(V). Pooling V first makes A's
        # product `window` times narrower (BViT-Ti: 768 -> 64 per head).
        out = attend(v.view(B, H, -1, Ld // window, window).mean(-1))  # (B', H, N_q, Ld / w)
        return out.transpose(1, 2).reshape(B, -1, out_dims)  # channels ordered (head, window)
    out = attend(v)  # (B', H, N_q, L*d)
    out = out.transpose(1, 2).reshape(B, -1, H * Ld)  # channels ordered (head, layer, d)
    if (H * Ld) % out_dims == 0:  # equal windows across heads
        return out.view(*out.shape[:2], out_dims, window).mean(-1)
    return F.adaptive_avg_pool1d(out, out_dims)  # (B', N_q, out_dims)


def dense_value_mix(v: torch.Tensor, previous: Sequence[torch.Tensor],
                    weights: torch.Tensor) -> torch.Tensor:
    """Dense attention's value: ``v_i + sum_j w_j v_j`` over the earlier layers j of the stage.

    The released layer computes ``A_i v_i + sum_j w_j A_i v_j``; by linearity mixing the values
    first needs one attention instead of one per earlier layer.

    Args:
        v (Tensor): this layer's value, (..., N, d).
        previous (Sequence[Tensor]): the j earlier layers' values, each shaped like ``v``
            (not detached: gradients reach them).
        weights (Tensor): this layer's mixing weights, at least ``len(previous)`` entries; entry j
            weighs layer j. Entries past ``len(previous)`` are unused and get a zero gradient.

    Returns:
        Tensor: shaped like ``v``.
    """
    if len(previous) > weights.numel():
        raise ValueError(f'{len(previous)} earlier values but only {weights.numel()} weights')
    # the slice keeps the whole weight vector in the graph, also for the first layer (empty
    # slice): every parameter gets a gradient, so DDP needs no find_unused_parameters
    w = weights[:len(previous)].to(v.dtype)
    if not previous:
        return v + w.sum()  # adds exactly 0 (an empty sum)
    stacked = torch.stack(list(previous), dim=0)  # (j, ..., N, d)
    # w (j,) @ (j, ...) as one matmul: tensordot's ONNX form reshapes by a shape constant that
    # the exporter merges with the empty weight slice of the first layer (a float), which
    # onnxruntime then refuses
    return v + torch.matmul(w, stacked.flatten(1)).view_as(v)




class BroadInputs:
    """The q, k, v of every layer of one forward pass, for :func:`broad_attention` after the
    last (the paper's form: joined at the end)."""

    def __init__(self, num_layers: int, query_rows: Optional[int] = None,
                 fused: bool = True) -> None:
        self.num_layers, self.query_rows, self.fused = num_layers, query_rows, fused
        self.kept: List[QKV] = []

    def append(self, qkv: QKV) -> None:
        """Add one layer's (q, k, v), each (B', H, N, d)."""
        self.kept.append(qkv)

    def attend(self, scale: float, out_dims: int) -> torch.Tensor:
        """The broad attention over all appended layers: (B', N_q, out_dims)."""
        if len(self.kept) != self.num_layers:
            raise ValueError(f'broad attention over {len(self.kept)} of its {self.num_layers} '
                             'layers')
        qs, ks, vs = zip(*self.kept)
        if self.query_rows is not None:  # the outputs of the first queries only
            qs = [q[:, :, :self.query_rows] for q in qs]
        return broad_attention(qs, ks, vs, scale, out_dims, fused=self.fused)


class BroadAttention(nn.Module):
    """BViT's broad attention as a (parameter-free) part of a model::

        inputs = broad.new_inputs(num_layers)    # at the start of a forward pass
        inputs.append((q, k, v))                  # after each layer
        out = broad(inputs)                       # (B', N_q, out_dims), after the last

    Args:
        scale (float): the logit factor (d ** -0.5 of one layer's heads).
        out_dims (int): channels after BPool.
        fused (bool): see :func:`scaled_dot_product`. Defaults to True.
    """

    def __init__(self, scale: float, out_dims: int, fused: bool = True) -> None:
        super().__init__()
        self.scale, self.out_dims, self.fused = scale, out_dims, fused

    def new_inputs(self, num_layers: int, query_rows: Optional[int] = None) -> BroadInputs:
        """Where a pass gathers its layers' q, k, v; ``query_rows``: outputs for the first
        queries only. Defaults to None: all."""
        return BroadInputs(num_layers, query_rows, self.fused)

    def forward(self, inputs: BroadInputs) -> torch.Tensor:
        return inputs.attend(self.scale, self.out_dims)


class DenseValues:
    """The earlier layers' values of one stage in one forward pass (Dense attention)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values: List[torch.Tensor] = []

    def mix(self, index: int, v: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Layer ``index``'s value ``v + sum_{j < index} weights[j] v_j``; ``v`` is kept as layer
        ``index``'s (a rerun of that layer, as gradient checkpointing does, replaces it)."""
        mixed = dense_value_mix(v, self.values[:index], weights)
        self.values[index:] = [v]
        return mixed


class DenseValueStore(nn.Module):
    """Dense attention's store of earlier values as a (parameter-free) part of a model: a new
    :class:`DenseValues` per stage and forward pass."""

    def new_pass(self, capacity: int, checkpointing: bool = False) -> DenseValues:
        """The store of one stage (``capacity`` layers) for one pass; ``checkpointing``: a
        layer may run again in backward."""
        return DenseValues(capacity)
