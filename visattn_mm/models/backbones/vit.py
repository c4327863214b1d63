"""A plain ViT whose layers can share their q, k, v: the base of BViT and Dense DeiT.

Layout (C = ``embed_dims``, L = ``num_layers``)::

    [stem]       optional 7x7 stride-2 conv 3 -> 3 (the released BViT code)
    patch_embed  conv p x p, stride p (a Linear over flattened patches in the released code)
    tokens       [cls, patches] + position embedding (resized to the input's grid)
    layers       L pre-norm blocks  x = x + DP(Attn(LN1 x));  x = x + DP(FFN(LN2 x))
    ln1          LayerNorm on the last layer's output (the released classifier head's norm)

Each block's attention returns its per-head q, k, v. A family decides, through three hooks, what
the layers share: what a layer is handed (:meth:`_layer_inputs`), what is kept of it
(:meth:`_remember`), and what is done with all that after the last layer (:meth:`_merge`).
Nothing is kept unless a family asks for it.

With ``out_type='cls_token'`` nothing reads the last layer's patch tokens, so that layer computes
its q, k, v for every token but its attention output, FFN and the merge for the cls token alone
(``query_rows=1``): the same output and gradients with fewer MACs at 224: BViT-Ti 14 % (197
tokens; the broad attention shrinks most), 8 % with the released stem (50 tokens), DenseDeiT-Ti
6.5 %. ``cls_only_last_layer = False`` on a model (or the class) computes every token, as the
released code does (``tools/analysis/model_zoo.py`` counts the architecture's MACs that way).
"""
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.transformer import FFN
from mmengine.logging import print_log
from mmengine.model.weight_init import trunc_normal_
from mmengine.utils import to_2tuple
from torch import nn

from ..layers import QKV, DropPath, MultiheadAttention, pad_to_multiple, resize_pos_embed
from .base import BaseBackbone, _split_init_cfg, maybe_checkpoint


def _square_side(n: int) -> Optional[int]:
    """The side of a square grid of ``n`` > 0 cells, or None when ``n`` is not a square."""
    side = math.isqrt(max(n, 0))
    return side if n > 0 and side * side == n else None


class TransformerBlock(nn.Module):
    """Pre-norm transformer block whose attention also returns q, k, v.

    Args:
        embed_dims (int): channels C.
        num_heads (int): heads H.
        feedforward_channels (int): the FFN's hidden width.
        head_dims (int, optional): channels per head. Defaults to C // H.
        qkv_bias (bool): bias in the q, k, v projection. Defaults to False (the released code).
        drop_rate (float): dropout after the attention projection and in the FFN. Defaults to 0.
        drop_path_rate (float): stochastic depth of this block. Defaults to 0.
        attn_cls (type): the attention class, called like :class:`MultiheadAttention`.
            Defaults to :class:`MultiheadAttention`.
        attn_cfg (dict, optional): extra arguments of ``attn_cls``. Defaults to None.
        act_cfg (dict): the FFN's activation. Defaults to ``dict(type='GELU')``.
        norm_cfg (dict): the norms. Defaults to ``dict(type='LN')``.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 head_dims: Optional[int] = None, qkv_bias: bool = False, drop_rate: float = 0.,
                 drop_path_rate: float = 0., attn_cls: Type[nn.Module] = MultiheadAttention,
                 attn_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type='LN')
        self.ln1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = attn_cls(embed_dims, num_heads, head_dims=head_dims, qkv_bias=qkv_bias,
                             proj_drop=drop_rate, **(attn_cfg or {}))
        self.ln2 = build_norm_layer(norm_cfg, embed_dims)[1]
        drop_path = dict(type='DropPath', drop_prob=drop_path_rate) if drop_path_rate > 0 \
            else None
        self.ffn = FFN(embed_dims, feedforward_channels, num_fcs=2, ffn_drop=drop_rate,
                       dropout_layer=drop_path, act_cfg=act_cfg or dict(type='GELU'))
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor, query_rows: Optional[int] = None,
                **attn_inputs: Any) -> Tuple[torch.Tensor, QKV]:
        """x: (B, N, C) -> (B, N', C) and the attention's (q, k, v), each (B, H, N, d); N' is
        ``query_rows`` (the first tokens' outputs only, over all N) or N."""
        out, qkv = self.attn(self.ln1(x), query_rows=query_rows, **attn_inputs)
        if query_rows is not None:
            x = x[:, :query_rows]
        x = self.drop_path.add(x, out)
        return self.ffn(self.ln2(x), identity=x), qkv  # x + DP(FFN(LN2 x))


class CrossLayerViT(BaseBackbone):
    """Plain ViT backbone with hooks for sharing q, k, v across layers (see the module doc).

    Args:
        arch (str | dict): a name of ``arch_zoo`` or a dict with ``embed_dims``, ``num_layers``,
            ``num_heads`` and ``feedforward_channels`` (mmpretrain's ViT arch keys), and
            optionally ``head_dims`` (channels per head; ``embed_dims // num_heads`` when
            missing or None).
        img_size (int | tuple[int, int]): the input size (H, W), or one side of a square, the
            position table is made for: a grid of (H / p) x (W / p) patches. Defaults to 224.
        patch_size (int): the patch side p. Defaults to 16.
        in_channels (int): image channels. Defaults to 3.
        out_indices (int | Sequence[int]): layers whose output is returned (negatives count
            from the end). Defaults to -1.
        out_type (str): what is returned per out index: ``'cls_token'`` (B, C), ``'featmap'``
            (B, C, H/p, W/p), ``'avg_featmap'`` (B, C, the patch tokens' mean) or ``'raw'``
            (B, 1 + HW/p^2, C; the cls token first, if there is one). Defaults to
            ``'cls_token'``.
        with_cls_token (bool): put a cls token before the patch tokens, as mmpretrain's
            ``VisionTransformer``. False (only with an ``out_type`` other than ``'cls_token'``)
            builds no cls token at all: no ``cls_token`` parameter and no slot for it in
            ``pos_embed``. A checkpoint made with a cls token still loads: its ``cls_token`` is
            left unused and the cls slot of its position table is dropped. (mmseg's ViT keeps
            the parameter and drops the token after the position embedding instead.)
            Defaults to True.
        qkv_bias (bool): bias in the q, k, v projections. Defaults to False.
        drop_rate (float): dropout after the position embedding and in the blocks. Defaults to 0.
        drop_path_rate (float): stochastic depth, rising linearly over the layers from 0.
            Defaults to 0.
        final_norm (bool): LayerNorm on the last layer's output. Defaults to True.
        released_stem (bool): the released BViT code's input path: a 7x7 stride-2 conv before the
            patches (total stride 2p) and the position table *sliced* to the first tokens instead
            of resized. Only needed to run the authors' weights. Defaults to False.
        norm_cfg (dict): the norms. Defaults to ``dict(type='LN')`` (eps 1e-5, as released).
        act_cfg (dict): the FFN activation. Defaults to ``dict(type='GELU')``.
        frozen_stages (int): -1 none, 0 the stem, patch embedding, cls token and position table,
            i: those and the first i layers (L: also ``ln1``). Defaults to -1.
        norm_eval (bool): keep norm layers in eval mode while training (BatchNorm only).
            Defaults to False.
        with_cp (bool): gradient checkpointing per layer while training. Defaults to False.
        init_cfg (dict | list, optional): Defaults to truncated-normal Linear weights (std .02)
            and unit LayerNorms; a ``Pretrained`` entry loads a checkpoint that must fit.
    """
    OUT_TYPES = ('cls_token', 'featmap', 'avg_featmap', 'raw')
    essential_keys = frozenset({'embed_dims', 'num_layers', 'num_heads',
                                'feedforward_channels'})
    optional_keys = {'head_dims': None}  # None: embed_dims // num_heads
    stage_desc = 'layer indices'
    resizable_pretrained = r'^pos_embed$'
    attn_cls: Type[nn.Module] = MultiheadAttention
    cls_only_last_layer = True  # see the module doc

    def __init__(self, arch: Union[str, dict] = 'tiny',
                 img_size: Union[int, Tuple[int, int]] = 224,
                 patch_size: int = 16, in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1, out_type: str = 'cls_token',
                 with_cls_token: bool = True,
                 qkv_bias: bool = False, drop_rate: float = 0., drop_path_rate: float = 0.,
                 final_norm: bool = True, released_stem: bool = False,
                 norm_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 frozen_stages: int = -1, norm_eval: bool = False, with_cp: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None,
                 attn_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)]
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        s = self.arch_settings
        self.embed_dims = C = s['embed_dims']
        self.num_layers = self.num_stages = s['num_layers']
        self.num_heads = s['num_heads']
        self.head_dims = s['head_dims'] or C // s['num_heads']
        if s['head_dims'] is None and C % s['num_heads']:
            raise ValueError(f'num_heads {s["num_heads"]} does not divide embed_dims {C}; '
                             f'choose a divisor of {C} or give head_dims')
        if out_type not in self.OUT_TYPES:
            raise ValueError(f'unknown out_type {out_type!r}; choose one of {self.OUT_TYPES}')
        if not with_cls_token and out_type == 'cls_token':
            raise ValueError("with_cls_token=False needs an out_type other than 'cls_token' "
                             f"(one of {self.OUT_TYPES[1:]})")
        if in_channels < 1:
            raise ValueError(f'in_channels must be positive, got {in_channels}')
        img_size = to_2tuple(img_size)
        if len(img_size) != 2 or not all(isinstance(side, int) and side >= patch_size
                                         for side in img_size):
            raise ValueError(f'img_size must be an int or (H, W), each at least patch_size '
                             f'{patch_size}, got {img_size!r}')
        self.img_size = tuple(img_size)
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.out_type = out_type
        self.out_indices = self._parse_out_indices(out_indices)
        self.frozen_stages = self._check_frozen_stages(frozen_stages)
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.released_stem = released_stem
        norm_cfg = norm_cfg or dict(type='LN')

        # released BViT: Conv2d(3, 3, 7, 2, 3) on the image, then p x p patches (stride 2p)
        self.stem = nn.Conv2d(in_channels, in_channels, 7, 2, 3) if released_stem else None
        self.patch_embed = nn.Conv2d(in_channels, C, patch_size, patch_size)
        self.with_cls_token = with_cls_token
        self.num_extra_tokens = 1 if with_cls_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C)) if with_cls_token else None
        # the table is made for img_size / p patches per side, also with the released stem
        # (whose code slices the first tokens of that table)
        self.pos_grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        num_tokens = self.num_extra_tokens + self.pos_grid[0] * self.pos_grid[1]
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, C))
        self.drop_after_pos = nn.Dropout(drop_rate)
        self._register_load_state_dict_pre_hook(self._resize_pos_embed_hook)

        dpr = self.drop_path_schedule(drop_path_rate, self.num_layers)
        self.layers = nn.ModuleList(
            TransformerBlock(C, self.num_heads, s['feedforward_channels'],
                             head_dims=self.head_dims, qkv_bias=qkv_bias, drop_rate=drop_rate,
                             drop_path_rate=dpr[i], attn_cls=self.attn_cls,
                             attn_cfg=self._attn_cfg(i, attn_cfg), act_cfg=act_cfg,
                             norm_cfg=norm_cfg)
            for i in range(self.num_layers))
        self.final_norm = final_norm
        self.ln1 = build_norm_layer(norm_cfg, C)[1] if final_norm else None
        self._build_shared_parts()
        self._freeze_stages()

    # ------------------------------------------------------------------ family hooks
    def _attn_cfg(self, index: int, attn_cfg: Optional[dict]) -> Optional[dict]:
        """Extra arguments of layer ``index``'s attention."""
        return attn_cfg

    def _build_shared_parts(self) -> None:
        """The parameter-free parts the layers share (e.g. the broad attention)."""

    def _new_memory(self) -> List[Any]:
        """Where a forward pass keeps what :meth:`_remember` returns (anything with
        ``append``)."""
        return []

    def _cls_only_last_layer(self) -> bool:
        """Whether the last layer computes its outputs for the cls token alone."""
        return self.out_type == 'cls_token' and self.cls_only_last_layer

    def _layer_inputs(self, index: int, memory: List[Any]) -> Dict[str, Any]:
        """Keyword arguments layer ``index``'s attention gets, given what was kept so far."""
        return {}

    def _remember(self, index: int, qkv: QKV) -> Any:
        """What is kept of layer ``index`` (None: nothing)."""
        return None

    def _merge(self, x: torch.Tensor, memory: List[Any]) -> torch.Tensor:
        """The last layer's output (B, N', C) combined with what was kept; N' may be fewer than
        the tokens (the first N' only: the cls token when only it is returned)."""
        return x

    # ------------------------------------------------------------------ init and loading
    def init_weights(self) -> None:
        first = not self._is_init
        super().init_weights()
        if not first or _split_init_cfg(self.init_cfg)[0] is not None:
            return  # already initialised, or loaded from a Pretrained checkpoint
        trunc_normal_(self.pos_embed, std=.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=.02)

    def _resize_pos_embed_hook(self, state_dict, prefix, *args, **kwargs) -> None:
        """Resize a checkpoint's position table made for another grid (fine-tuning at another
        size), with a log line; the released-stem form slices and needs the same table.
        Without a cls token, the cls slot of a table made with one is dropped first."""
        key = prefix + 'pos_embed'
        if key not in state_dict or state_dict[key].shape == self.pos_embed.shape:
            return
        src = state_dict[key]
        if not self.with_cls_token and (src.shape[1] == self.pos_embed.shape[1] + 1
                                        or _square_side(src.shape[1] - 1)):
            src = state_dict[key] = src[:, 1:]
            if src.shape == self.pos_embed.shape:
                return
        side = _square_side(src.shape[1] - self.num_extra_tokens)
        if side is None or self.released_stem:
            return  # not a square grid: let the shape check report it
        print_log(f'{type(self).__name__}: resized the position table from {side}x{side} to '
                  f'{self.pos_grid[0]}x{self.pos_grid[1]}', logger='current')
        state_dict[key] = resize_pos_embed(src, (side, side), self.pos_grid, mode='bicubic',
                                           num_extra_tokens=self.num_extra_tokens)

    def no_weight_decay(self) -> set:
        """Names of parameters that optimisers should not decay."""
        return {'pos_embed', 'cls_token'} if self.cls_token is not None else {'pos_embed'}

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer depth of a parameter, for mmpretrain's layer-wise learning-rate decay.

        Returns:
            tuple: (depth, number of depths): 0 for the embeddings, i + 1 for layer i,
            L + 1 for the rest (final norm, head).
        """
        num = self.num_layers + 2
        if not param_name.startswith(prefix):
            return num - 1, num  # not in the backbone: the head
        name = param_name[len(prefix):]
        if name.split('.')[0] in ('cls_token', 'pos_embed', 'patch_embed', 'stem'):
            return 0, num
        if name.startswith('layers.'):
            return int(name.split('.')[1]) + 1, num
        return num - 1, num

    # ------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules = [m for m in (self.stem, self.patch_embed, self.drop_after_pos) if m is not None]
        modules += list(self.layers[:self.frozen_stages])
        if self.frozen_stages == self.num_layers and self.ln1 is not None:
            modules.append(self.ln1)
        return modules

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 0:
            if self.cls_token is not None:
                self.cls_token.requires_grad = False
            self.pos_embed.requires_grad = False

    # ------------------------------------------------------------------ forward
    def _position_embedding(self, grid: Tuple[int, int]) -> torch.Tensor:
        """The table for a grid of patches: (1, num_extra_tokens + h * w, C)."""
        n = grid[0] * grid[1]
        extra = self.num_extra_tokens
        if self.released_stem:
            if n + extra > self.pos_embed.shape[1]:
                stride = 2 * self.patch_size
                raise ValueError(
                    f'{type(self).__name__} with released_stem=True slices its position table of '
                    f'{self.pos_embed.shape[1] - extra} patches, but this input gives {grid[0]}x'
                    f'{grid[1]} = {n}; use at most {self.pos_embed.shape[1] - extra} patches '
                    f'(inputs up to ~{stride * self.pos_grid[0]}x{stride * self.pos_grid[1]} '
                    'pixels) or the paper form (released_stem=False) for larger inputs')
            return self.pos_embed[:, :n + extra]
        return resize_pos_embed(self.pos_embed, self.pos_grid, grid, mode='bicubic',
                                num_extra_tokens=extra)

    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Images (B, C_in, H, W) -> tokens (B, num_extra_tokens + h * w, C) and the patch grid
        (h, w)."""
        stride = self.patch_size * (2 if self.stem is not None else 1)
        self._check_input(x, min_size=stride // 2 + 1 if self.stem is not None else 1)
        if self.stem is not None:
            x = self.stem(x)
        x = pad_to_multiple(x, self.patch_size)  # whole patches: pad right and bottom
        x, grid = self._patchify(x)  # (B, h*w, C)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # (B, 1+h*w, C)
        return self.drop_after_pos(x + self._position_embedding(grid)), grid

    def patch_grid(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """The patch grid (h, w) of an input of ``size`` (H, W) (after the stem and the pad to
        whole patches)."""
        H, W = size
        if self.stem is not None:  # 7x7, stride 2, pad 3: ceil(H / 2)
            H, W = -(-H // 2), -(-W // 2)
        return -(-H // self.patch_size), -(-W // self.patch_size)

    def _patchify(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """``patch_embed`` (a p x p conv of stride p) on whole patches, as the Linear over each
        flattened patch that it is: (B, C_in, H, W) -> tokens (B, h * w, C) and (h, w).

        The same numbers as the conv, and a faster backward (docs/speed.md).
        """
        B, C_in, H, W = x.shape
        p = self.patch_size
        h, w = H // p, W // p
        patches = x.reshape(B, C_in, h, p, w, p).permute(0, 2, 4, 1, 3, 5)
        patches = patches.reshape(B, h * w, C_in * p * p)  # each patch ordered (C_in, p, p)
        weight = self.patch_embed.weight.reshape(self.embed_dims, C_in * p * p)
        return F.linear(patches, weight, self.patch_embed.bias), (h, w)

    def _format(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        if self.out_type == 'cls_token':
            return x[:, 0]
        if self.out_type == 'raw':
            return x
        patches = x[:, self.num_extra_tokens:]  # (B, h*w, C)
        if self.out_type == 'avg_featmap':
            return patches.mean(dim=1)
        B, _, C = patches.shape
        return patches.transpose(1, 2).reshape(B, C, *grid)  # (B, C, h, w)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            x (Tensor): images (B, in_channels, H, W), any size (padded to whole patches).

        Returns:
            tuple: one tensor per out index, shaped as ``out_type`` says.
        """
        x, grid = self._embed(x)
        memory = self._new_memory()
        outs = []
        for i, layer in enumerate(self.layers):
            inputs = self._layer_inputs(i, memory)
            if i == self.num_layers - 1 and self._cls_only_last_layer():
                # nothing reads the last layer's patch tokens: its attention output, FFN and
                # the merge are computed for the cls token alone, from every token's q, k, v
                inputs['query_rows'] = 1
            x, qkv = maybe_checkpoint(self.with_cp and self.training, layer, x, **inputs)
            kept = self._remember(i, qkv)
            if kept is not None:
                memory.append(kept)
            if i == self.num_layers - 1:
                x = self._merge(x, memory)
                if self.ln1 is not None:
                    x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format(x, grid))
        return tuple(outs)
