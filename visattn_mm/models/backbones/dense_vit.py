"""Dense attention on DeiT (Li et al., "Dense Attention: A Densely Connected Attention Mechanism
for Vision Transformer", IJCNN 2023); numerics follow the authors' released code
(github.com/koala719/Dense-ViT, ``model/layer/denseViT.py``).

Layer i attends over its own value plus a learned mix of the earlier layers' values::

    out_i = A_i (v_i + sum_{j < i} w_ij v_j),   A_i = softmax(q_i k_i^T / sqrt(d))

The released code forms ``A_i V_j`` for all 12 j, zero placeholders included; mixing the values
first (:func:`dense_value_mix`, through :class:`DenseValues`) needs one fused attention per
layer. ``w_i`` keeps the released
layout, a vector of ``num_layers`` standard-normal weights per layer (so parameter counts and
checkpoints match); the entries j >= i are unused and get a zero gradient, so every parameter is
in the graph and DDP needs no ``find_unused_parameters``.
"""
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn

from visattn_mm.registry import MODELS
from ..layers import QKV, DenseValues, DenseValueStore, MultiheadAttention
from .vit import CrossLayerViT


class DenseAttention(MultiheadAttention):
    """Multi-head self-attention over ``v + sum_j w_j v_j`` (earlier layers' values).

    Args:
        *args: see :class:`MultiheadAttention`.
        num_links (int): length of the mixing-weight vector ``mix_weight`` (the released code:
            12, the depth). Defaults to 12.
        **kwargs: see :class:`MultiheadAttention`.
    """

    def __init__(self, *args, num_links: int = 12, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mix_weight = nn.Parameter(torch.randn(num_links))  # released init: N(0, 1)

    def forward(self, x: torch.Tensor, values: Optional[DenseValues] = None, index: int = 0,
                query_rows: Optional[int] = None) -> Tuple[torch.Tensor, QKV]:
        """
        Args:
            x (Tensor): (B, N, C).
            values (DenseValues, optional): the earlier layers' values of this pass, which keeps
                this one's too. Defaults to None: no earlier layer.
            index (int): this layer's place in the pass. Defaults to 0.
            query_rows (int, optional): see :class:`MultiheadAttention`.
        """
        values = DenseValues(1) if values is None else values
        return super().forward(x, lambda v: values.mix(index, v, self.mix_weight), query_rows)


@MODELS.register_module()
class DenseDeiT(CrossLayerViT):
    """DeiT with dense attention, with the number of heads as a setting (head slimming).

    Args:
        arch (str | dict): ``'tiny'`` (C 192, MLP 768) or ``'small'`` (C 384, MLP 1536), 12
            layers, heads of 64 channels, or a dict (see :class:`CrossLayerViT`).
            Defaults to ``'tiny'``.
        num_heads (int, optional): heads per layer; the released tiny model has 2 (5,120,824
            parameters with its head), small 6. The paper's slimming study uses tiny with
            3, 2, 1 and small with 6, 4, 3. Defaults to the arch's (2 and 6).
        **kwargs: see :class:`CrossLayerViT`.
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'ti', 'tiny'],
                        dict(embed_dims=192, num_layers=12, num_heads=2, head_dims=64,
                             feedforward_channels=768)),
        **dict.fromkeys(['s', 'small'],
                        dict(embed_dims=384, num_layers=12, num_heads=6, head_dims=64,
                             feedforward_channels=1536)),
    }
    attn_cls = DenseAttention

    def __init__(self, arch='tiny', num_heads: Optional[int] = None, **kwargs) -> None:
        if num_heads is not None:
            if not isinstance(num_heads, int) or num_heads < 1:
                raise ValueError(f'num_heads must be a positive int, got {num_heads!r}')
            arch = dict(self._parse_arch(arch), num_heads=num_heads)
        super().__init__(arch, **kwargs)

    def _attn_cfg(self, index: int, attn_cfg: Optional[dict]) -> dict:
        return dict(attn_cfg or {}, num_links=self.arch_settings['num_layers'])

    def _build_shared_parts(self) -> None:
        self.dense_values = DenseValueStore()

    def _new_memory(self) -> DenseValues:
        # (with gradient checkpointing a layer runs again in backward)
        return self.dense_values.new_pass(self.num_layers,
                                          checkpointing=self.with_cp and self.training)

    def _layer_inputs(self, index: int, memory: DenseValues) -> Dict[str, Any]:
        return dict(values=memory, index=index)
