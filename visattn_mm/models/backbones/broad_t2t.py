"""Broad attention on mmpretrain's T2T-ViT (BViT, Li et al., TNNLS 2023, arXiv 2202.06268).

T2T-ViT's encoder is a plain ViT (fixed token count and width), so broad attention goes on it as
in :class:`BViT`: every encoder layer's per-head q, k, v (not detached) are joined after the last
layer by one parameter-free attention::

    A         = softmax(sum_l q_l k_l^T * d^-1/2)     one N x N map per head, all tokens
    Out_broad = BPool(A [v_1 .. v_L])                 (head, layer, d) channels -> C
    z         = Out_deep + broad_weight * Out_broad   before the final norm

(:func:`broad_attention`; for T2T-ViT-14: 14 layers, 6 heads of 64, C = 384, so BPool averages
windows of 14 channels). The tokens-to-token module is untouched. The encoder layers are
mmpretrain's ``T2TTransformerLayer``\\ s, driven by :func:`layer_forward` so that their q, k, v
can leave them: their own attention is mmpretrain's (its ``scaled_dot_product_attention``
attribute, including its scale convention), so ``broad_weight=0`` gives mmpretrain's output.
No parameter is added: parameters and state-dict keys are mmpretrain's ``T2T_ViT``'s.

The layers' own scale: mmpretrain 1.2.0's ``T2TTransformerLayer`` passes
``qk_scale = (input_dims // num_heads) ** -0.5`` (the official T2T-ViT's value), but its
``MultiheadAttention`` then ignores the value and *divides* the logits by ``head_dims ** -0.5``
(``scaled_dot_product_attention_pyimpl``): logits x sqrt(d), x8 for T2T-ViT-14. Here every such
attention (tokens-to-token module and encoder) multiplies by ``(input_dims // num_heads) ** -0.5``
as documented and as the official code does, through ``F.scaled_dot_product_attention``; so a
mmpretrain T2T-ViT checkpoint loads as it is, but its outputs differ from mmpretrain's. The
official T2T-ViT-14 ImageNet weights were trained with ``384 ** -0.5`` in the encoder: pass
``encoder_qk_scale=384 ** -0.5`` to run them. The broad attention uses d ** -0.5, as BViT.
"""
from functools import partial
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.utils import to_2tuple
from mmpretrain.models.backbones import T2T_ViT
from mmpretrain.models.backbones.t2t_vit import get_sinusoid_encoding
from mmpretrain.models.utils import MultiheadAttention
from torch import nn

from visattn_mm.registry import MODELS
from ..layers import QKV, broad_attention, resize_pos_embed, use_fused_attn
from .base import BaseBackbone, maybe_checkpoint


T2T_STRIDE = 16  # the tokens-to-token module's three soft splits: strides 4, 2, 2


def fix_attention_scale(module: nn.Module, qk_scale: Optional[float] = None) -> None:
    """Make every mmpretrain ``MultiheadAttention`` under ``module`` multiply its logits by
    ``qk_scale`` (default ``(input_dims // num_heads) ** -0.5``), fused (see the module doc)."""
    for m in module.modules():
        if isinstance(m, MultiheadAttention):
            scale = qk_scale or (m.input_dims // m.num_heads) ** -0.5
            m.scaled_dot_product_attention = partial(F.scaled_dot_product_attention, scale=scale)


def layer_forward(layer: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, QKV]:
    """An mmpretrain ``T2TTransformerLayer`` (no value shortcut) that also returns q, k, v.

    Args:
        layer: the layer.
        x (Tensor): (B, N, C).

    Returns:
        tuple: the output (B, N, C) and the attention's (q, k, v), each (B, heads, N, d).
    """
    attn = layer.attn
    h = layer.ln1(x)
    B, N, _ = h.shape
    qkv = attn.qkv(h).reshape(B, N, 3, attn.num_heads, attn.head_dims)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, N, d) each
    out = attn.scaled_dot_product_attention(
        q, k, v, dropout_p=attn.attn_drop if attn.training else 0.)  # mmpretrain's own
    out = attn.proj(out.transpose(1, 2).reshape(B, N, attn.embed_dims))
    x = x + attn.out_drop(attn.gamma1(attn.proj_drop(out)))
    x = layer.ffn(layer.ln2(x), identity=x)
    return x, (q, k, v)


@MODELS.register_module()
class BroadT2TViT(T2T_ViT, BaseBackbone):
    """T2T-ViT with broad attention (see the module doc).

    Args:
        img_size (int | tuple[int, int]): the usual input size (H, W), or one side of a square,
            for the position table: (H / 16) x (W / 16) tokens. Defaults to 224.
        in_channels (int): image channels. Defaults to 3.
        embed_dims (int): token width C. Defaults to 384 (T2T-ViT-14).
        num_layers (int): encoder layers L. Defaults to 14 (T2T-ViT-14).
        out_indices (int | Sequence[int]): layers whose outputs are returned, negatives from the
            end. Defaults to -1.
        drop_rate (float): dropout after the position embedding. Defaults to 0.
        drop_path_rate (float): stochastic depth, rising linearly over the layers. Defaults to 0.
        norm_cfg (dict): the norms. Defaults to ``dict(type='LN')``.
        final_norm (bool): norm after the last layer (and the broad term). Defaults to True.
        out_type (str): ``'cls_token'``, ``'featmap'``, ``'avg_featmap'`` or ``'raw'``.
            Defaults to ``'cls_token'``.
        with_cls_token (bool): prepend a class token; False (not with ``out_type='cls_token'``)
            builds none, as mmpretrain's ``T2T_ViT``. Defaults to True.
        interpolate_mode (str): how the position table is resized. Defaults to ``'bicubic'``.
        t2t_cfg (dict): extra tokens-to-token config. Defaults to an empty dict.
        layer_cfgs (dict | Sequence[dict]): extra encoder-layer configs (e.g. ``num_heads``).
            Defaults to an empty dict (6 heads, MLP 3C).
        frozen_stages (int): -1 none, 0 the tokens-to-token module and class token, i: those and
            the first i layers (L: also the final norm). Defaults to -1.
        norm_eval (bool): BatchNorm layers stay in eval mode while training. Defaults to False.
        with_cp (bool): gradient checkpointing per layer. Defaults to False.
        broad_weight (float): weight of the broad output. Defaults to 0.4 (BViT's constant).
        encoder_qk_scale (float, optional): the encoder layers' logit factor. Defaults to
            ``head_dims ** -0.5`` (see the module doc for the official weights' value).
        init_cfg (dict | list, optional): a ``Pretrained`` entry (with ``prefix``) loads a
            checkpoint that must fit. Defaults to None.
    """
    stage_desc = 'layer indices'
    resizable_pretrained = r'^pos_embed$'

    def __init__(self, img_size: Union[int, tuple] = 224, in_channels: int = 3,
                 embed_dims: int = 384, num_layers: int = 14,
                 out_indices: Union[int, Sequence[int]] = -1, drop_rate: float = 0.,
                 drop_path_rate: float = 0., norm_cfg: Optional[dict] = None,
                 final_norm: bool = True, out_type: str = 'cls_token',
                 with_cls_token: bool = True, interpolate_mode: str = 'bicubic',
                 t2t_cfg: Optional[dict] = None,
                 layer_cfgs: Union[dict, Sequence[dict], None] = None,
                 frozen_stages: int = -1, norm_eval: bool = False, with_cp: bool = False,
                 broad_weight: float = 0.4, encoder_qk_scale: Optional[float] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'unknown out_type {out_type!r}; choose one of '
                             f'{sorted(self.OUT_TYPES)}')
        if in_channels < 1 or num_layers < 1:
            raise ValueError(f'in_channels and num_layers must be positive, got {in_channels} '
                             f'and {num_layers}')
        img_size = to_2tuple(img_size)
        if len(img_size) != 2 or not all(isinstance(side, int) and side >= T2T_STRIDE
                                         for side in img_size):
            raise ValueError(f'img_size must be an int or (H, W), each at least {T2T_STRIDE}, '
                             f'got {img_size!r}')
        # mmpretrain's tokens-to-token module takes one side (a square table): the height here,
        # and the table is remade for (H, W) below; out_indices=[L - 1] here, checked below
        super().__init__(img_size=img_size[0], in_channels=in_channels, embed_dims=embed_dims,
                         num_layers=num_layers, out_indices=[num_layers - 1],
                         drop_rate=drop_rate, drop_path_rate=drop_path_rate,
                         norm_cfg=norm_cfg or dict(type='LN'), final_norm=final_norm,
                         out_type=out_type, with_cls_token=with_cls_token,
                         interpolate_mode=interpolate_mode, t2t_cfg=t2t_cfg or {},
                         layer_cfgs=layer_cfgs or {}, init_cfg=init_cfg)
        if any(layer.v_shortcut for layer in self.encoder):
            raise ValueError('BroadT2TViT encoder layers must map C to C (no input_dims in '
                             'layer_cfgs)')
        if img_size[1] != img_size[0]:  # an h x w table of the same sinusoid encoding
            grid = [img_size[0] // T2T_STRIDE, img_size[1] // T2T_STRIDE]
            self.tokens_to_token.init_out_size = self.patch_resolution = grid
            self.tokens_to_token.num_patches = grid[0] * grid[1]
            self.pos_embed = get_sinusoid_encoding(self.num_extra_tokens + grid[0] * grid[1],
                                                   embed_dims)
        self.num_stages = self.num_layers = num_layers
        self.embed_dims = embed_dims
        self.in_channels = in_channels
        self.out_indices = self._parse_out_indices(out_indices)
        self.frozen_stages = self._check_frozen_stages(frozen_stages)
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.broad_weight = broad_weight
        self.fused_attn = use_fused_attn()
        fix_attention_scale(self.tokens_to_token)
        fix_attention_scale(self.encoder, encoder_qk_scale)
        # mmpretrain's drop-path rates are numpy floats: `drop_prob == 0.` is then a numpy bool,
        # a data-dependent branch that breaks a torch.compile graph in every layer
        for module in self.modules():
            if isinstance(module, DropPath):
                module.drop_prob = float(module.drop_prob)
        self._freeze_stages()

    def init_weights(self) -> None:
        if self.cls_token is not None:
            super().init_weights()
        else:  # mmpretrain's T2T_ViT would initialise the cls token it does not have
            super(T2T_ViT, self).init_weights()

    # ------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules = [self.tokens_to_token, self.drop_after_pos,
                   *self.encoder[:self.frozen_stages]]
        if self.frozen_stages == self.num_layers:
            modules.append(self.norm)
        return modules

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 0 and self.cls_token is not None:
            self.cls_token.requires_grad = False

    def train(self, mode: bool = True) -> 'BroadT2TViT':
        return BaseBackbone.train(self, mode)

    # ------------------------------------------------------------------ forward
    def _broad(self, x: torch.Tensor, kept: List[QKV]) -> torch.Tensor:
        """The last layer's output (B, N, C) plus the weighted broad attention of all layers."""
        qs, ks, vs = zip(*kept)
        attn = self.encoder[-1].attn
        broad = broad_attention(qs, ks, vs, attn.head_dims ** -0.5, self.embed_dims,
                                fused=self.fused_attn)  # (B, N, C)
        return x + self.broad_weight * broad

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            x (Tensor): images (B, in_channels, H, W), any size.

        Returns:
            tuple: one tensor per out index, shaped as ``out_type`` says.
        """
        self._check_input(x)
        B = x.shape[0]
        x, grid = self.tokens_to_token(x)  # (B, h*w, C)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, grid,
                                 mode=self.interpolate_mode,
                                 num_extra_tokens=self.num_extra_tokens)
        x = self.drop_after_pos(x)

        kept: List[QKV] = []
        outs = []
        for i, layer in enumerate(self.encoder):
            x, qkv = maybe_checkpoint(self.with_cp, partial(layer_forward, layer), x)
            kept.append(qkv)
            if i == self.num_layers - 1:
                x = self.norm(self._broad(x, kept))  # norm: Identity without final_norm
            if i in self.out_indices:
                outs.append(self._format_output(x, grid))
        return tuple(outs)
