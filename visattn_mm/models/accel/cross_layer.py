"""Leaner forms of the cross-layer mechanisms, on any device.

* BViT at inference (:class:`BroadAttentionSum`): the broad attention's logits summed and its
  values joined layer by layer, so that no layer's q, k, v is kept to the end.
* Dense attention (:class:`DenseValueBank`): the earlier values written once into one buffer per
  stage, each layer's mix one matmul over it, in training too, with a hand-written backward.

Both compute what the paper's forms in :mod:`visattn_mm.models.layers.attention` compute, to
float rounding (``tests/models/backbones/test_bvit.py``, ``test_dense_vit.py``).
"""
from typing import List, Optional, Tuple

import torch
from torch import nn

from ..layers import (QKV, BroadAttention, BroadInputs, DenseValues, DenseValueStore,
                      records_graph)
from ..layers.attention import _attend_and_pool
from . import Form, enabled, picker


def _records_autograd() -> bool:
    return torch.is_grad_enabled() or records_graph()


class BroadAttentionSum(BroadInputs):
    """:func:`broad_attention`'s inputs gathered layer by layer, for inference (no autograd).

    Joining every layer's q, k and v at the end keeps each layer's q, k, v projection alive
    until the last layer and then copies it once more. Here each
    layer adds ``q_l k_l^T`` to one sum of logits (fp32; of the first ``query_rows`` queries)
    and writes v_l into one joined buffer, and nothing else of it is kept::

        inputs = BroadAttentionSum(num_layers, query_rows)
        for each layer: inputs.append((q, k, v))
        out = inputs.attend(scale, out_dims)       # = BroadInputs' broad_attention

    Where the N_q x N logits would be larger than the q and k they replace (N_q > 2 L d: many
    tokens, e.g. a detection input), the layers' q, k, v are kept and joined as
    :func:`broad_attention` does, whose fused attention forms no N x N map. (Writing q and k
    into joins as well, for one fused attention at the end, kept 2x the memory of the sum and
    was no faster.)

    Args:
        num_layers (int): L, the layers that will be appended.
        query_rows (int, optional): outputs for the first queries only. Defaults to None: all.
        fused (bool): see :func:`scaled_dot_product` (the joined form). Defaults to True.
    """

    def __init__(self, num_layers: int, query_rows: Optional[int] = None,
                 fused: bool = True) -> None:
        super().__init__(num_layers, query_rows, fused)
        self.logits: Optional[torch.Tensor] = None
        self.values: Optional[torch.Tensor] = None
        self.count = 0  # (self.kept: the joined form's inputs)

    def append(self, qkv: QKV) -> None:
        """Add one layer's (q, k, v), each (B', H, N, d)."""
        if self.count == self.num_layers:
            raise ValueError(f'BroadAttentionSum was made for {self.num_layers} layers')
        q, k, v = qkv
        if self.query_rows is not None:
            q = q[:, :, :self.query_rows]
        d = v.shape[-1]
        if self.kept or self.count == 0 and q.shape[-2] > 2 * self.num_layers * q.shape[-1]:
            self.kept.append((q, k, v))
        else:
            if q.shape[-2] == 1:  # (one query: a product and a sum beat a matmul)
                logits = (q * k).sum(-1).unsqueeze(-2).float()  # (B', H, 1, N)
            else:
                logits = torch.matmul(q, k.transpose(-2, -1)).float()  # (B', H, N_q, N)
            if self.count == 0:
                self.logits = logits
                self.values = v.new_empty(*v.shape[:-1], self.num_layers * d)
            else:
                self.logits += logits
            self.values[..., self.count * d:(self.count + 1) * d] = v
        self.count += 1

    def attend(self, scale: float, out_dims: int) -> torch.Tensor:
        """The broad attention over all appended layers: (B', N_q, out_dims)."""
        if self.count != self.num_layers:
            raise ValueError(f'BroadAttentionSum holds {self.count} of its {self.num_layers} '
                             'layers')
        if self.kept:
            return super().attend(scale, out_dims)
        weights = torch.softmax(self.logits * scale, dim=-1)
        return _attend_and_pool(lambda value: torch.matmul(weights.to(value.dtype), value),
                                self.values, out_dims)


class DenseValueBank(DenseValues):
    """The earlier layers' values of one stage, for dense attention without stacking.

    :func:`dense_value_mix` stacks the earlier values anew for every layer, and its backward
    makes a gradient of that stack too (~5 % of a DenseDeiT-Ti training step). Here each value
    is written once into one preallocated buffer, so that each layer's mix is a single matmul
    over it::

        bank = DenseValueBank(num_layers)
        mixed = bank.mix(i, v, weights)    # v + sum_j w_j v_j, then v is kept for later layers

    While autograd records, the mix is one autograd function per layer whose backward, too,
    reads buffers instead of building stacks. Later layers read v_i from the buffer, not through
    an autograd edge, so their share of v_i's gradient reaches it through layer i's own
    function: layers run backward in reverse order (layer i's input depends on every later
    layer's output), so when layer i's backward runs, the gradients g_k of all later mixes are
    in the bank, and::

        dL/dv_i   = g_i + sum_{k > i} w_k[i] g_k       one matmul over the stored g_k
        dL/dw_i[j] = <g_i, v_j>  (j < i), 0 else        one matrix-vector product over the buffer

    A bank serves one forward pass (and its backward), its layers in order. It is not for
    gradient checkpointing, which reruns a layer's forward during backward, nor for tracers and
    ``torch.compile``: :class:`DenseValues` serves there.

    Args:
        capacity (int): how many values the stage keeps at most (its depth).
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.count = 0
        self.buffer: Optional[torch.Tensor] = None  # (capacity, *v.shape), the values
        self.weights: List[torch.Tensor] = []  # each layer's mixing weights
        self.grads: Optional[torch.Tensor] = None  # the mixes' gradients, filled in backward
        self.first_recorded: Optional[int] = None  # the first layer whose mix autograd recorded

    def mix(self, index: int, v: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``v + sum_j weights[j] v_j`` over the values kept so far; then keeps ``v``."""
        i = self.count
        if index != i:
            raise ValueError(f'a DenseValueBank takes its layers in order: layer {index} '
                             f'after {i} of them')
        if i >= self.capacity or i > weights.numel():
            raise ValueError(f'layer {i} of a stage of {self.capacity} with {weights.numel()} '
                             'mixing weights')
        if torch.is_grad_enabled() and (v.requires_grad or weights.requires_grad):
            if self.first_recorded is None:
                self.first_recorded = i
            return _BankedMix.apply(v, weights, self)
        return self._forward(v, weights)

    def _forward(self, v: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        i = self.count
        if self.buffer is None:
            self.buffer = v.new_empty((self.capacity, *v.shape))
        self.buffer[i].copy_(v)
        self.weights.append(weights)
        self.count += 1
        coef = torch.cat([weights[:i].to(v.dtype), v.new_ones(1)])  # (w_0 .. w_{i-1}, 1)
        return torch.tensordot(coef, self.buffer[:i + 1], dims=1)  # (..., N, d)

    def _backward(self, i: int, grad: torch.Tensor, weights: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
        n = self.count
        if self.grads is None:  # the first backward of this pass; layers never reached stay 0
            self.grads = grad.new_zeros((n, *grad.shape))
        grads = self.grads
        grads[i].copy_(grad)
        # (1, w_{i+1}[i], .., w_{n-1}[i]): how much each later mix took of v_i
        coef = torch.stack([grad.new_ones(())] + [self.weights[k][i].to(grad.dtype).detach()
                                                   for k in range(i + 1, n)])
        grad_v = torch.tensordot(coef, grads[i:n], dims=1)
        grad_w = torch.zeros_like(weights)
        if i:
            grad_w[:i] = (self.buffer[:i].flatten(1) @ grads[i].flatten()).to(weights.dtype)
        if i == self.first_recorded:  # the pass is over: a second backward starts afresh
            self.grads = None
        return grad_v, grad_w


class _BankedMix(torch.autograd.Function):
    """One layer's dense value mix through a :class:`DenseValueBank` (see there)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, weights: torch.Tensor,
                bank: DenseValueBank) -> torch.Tensor:
        ctx.bank, ctx.index = bank, bank.count
        ctx.save_for_backward(weights)
        return bank._forward(v, weights)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        grad_v, grad_w = ctx.bank._backward(ctx.index, grad, *ctx.saved_tensors)
        return grad_v, grad_w, None


class SummedBroadAttention(Form):
    """:class:`BroadAttention.new_inputs` giving a :class:`BroadAttentionSum` to passes that
    autograd, a tracer or the compiler do not record."""
    replaces = 'new_inputs'

    def __call__(self, num_layers: int, query_rows: Optional[int] = None) -> BroadInputs:
        if not enabled() or _records_autograd():
            return self.plain(num_layers, query_rows)
        return BroadAttentionSum(num_layers, query_rows, self.module.fused)


class BankedDenseValues(Form):
    """:class:`DenseValueStore.new_pass` giving a :class:`DenseValueBank` to every pass but
    those where a layer may run twice (gradient checkpointing) or a tracer or the compiler
    records autograd."""
    replaces = 'new_pass'

    def __call__(self, capacity: int, checkpointing: bool = False) -> DenseValues:
        if not enabled() or torch.is_grad_enabled() and (
                checkpointing or records_graph()):
            return self.plain(capacity, checkpointing)
        return DenseValueBank(capacity)


@picker
def _pick_cross_layer(module: nn.Module, context: dict):
    if isinstance(module, BroadAttention):
        return SummedBroadAttention(module)
    if isinstance(module, DenseValueStore):
        return BankedDenseValues(module)
    return None
