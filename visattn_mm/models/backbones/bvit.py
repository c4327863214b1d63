"""BViT: broad attention on a plain ViT (Li et al., "BViT: Broad Attention based Vision
Transformer", TNNLS 2023, arXiv 2202.06268); numerics follow the authors' released code
(github.com/koala719/BViT, ``model/layer/bvit.py``).

After the last of L layers, a parameter-free attention joins every layer's per-head q, k, v
(not detached)::

    A         = softmax(sum_l q_l k_l^T / sqrt(d))          one N x N map per head
    Out_broad = BPool(A [v_1 .. v_L])                       (head, layer, d) channels -> C
    z         = Out_deep + 0.4 * Out_broad                  on all tokens

computed as one fused attention over the joined q, k, v (:class:`BroadAttention`); no per-layer
map is stored. When only the cls token is returned (``out_type='cls_token'``), the last layer
after its q, k, v and the broad attention are computed for that token's query alone (the same
numbers; see :class:`CrossLayerViT`). The classifier is LayerNorm + Linear on the cls token
(``ln1`` + an mmpretrain ``LinearClsHead``).
"""
import torch

from visattn_mm.registry import MODELS
from ..layers import QKV, BroadAttention, BroadInputs
from .vit import CrossLayerViT


@MODELS.register_module()
class BViT(CrossLayerViT):
    """BViT backbone: a DeiT-sized ViT with broad attention.

    Args:
        arch (str | dict): ``'tiny'`` (BViT-5M: C 192, 12 layers, 3 heads of 64, MLP 768) or
            ``'small'`` (BViT-22M: C 384, 6 heads), or a dict (see :class:`CrossLayerViT`).
            Defaults to ``'tiny'``.
        broad_weight (float): the weight of the broad output. Defaults to 0.4 (released).
        **kwargs: see :class:`CrossLayerViT`. ``released_stem=True`` gives the released
            model's 7x7 stride-2 conv stem (needed to run the authors' weights).
    """
    arch_zoo = {
        **dict.fromkeys(['t', 'ti', 'tiny', '5m'],
                        dict(embed_dims=192, num_layers=12, num_heads=3, head_dims=64,
                             feedforward_channels=768)),
        **dict.fromkeys(['s', 'small', '22m'],
                        dict(embed_dims=384, num_layers=12, num_heads=6, head_dims=64,
                             feedforward_channels=1536)),
    }

    def __init__(self, arch='tiny', broad_weight: float = 0.4, **kwargs) -> None:
        super().__init__(arch, **kwargs)
        self.broad_weight = broad_weight

    def _build_shared_parts(self) -> None:
        self.broad = BroadAttention(self.head_dims ** -0.5, self.embed_dims,
                                    fused=self.layers[0].attn.fused_attn)

    def _new_memory(self) -> BroadInputs:
        return self.broad.new_inputs(self.num_layers, 1 if self._cls_only_last_layer() else None)

    def _remember(self, index: int, qkv: QKV) -> QKV:
        return qkv

    def _merge(self, x: torch.Tensor, memory: BroadInputs) -> torch.Tensor:
        return x + self.broad_weight * self.broad(memory)  # (B, N', C)
