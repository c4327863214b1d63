"""Broad attention (BViT) and dense attention on mmpretrain's Swin Transformer.

Both papers say their mechanism carries over to Swin; no code for that is public, so the Swin forms
below are this package's design. They extend mmpretrain's ``SwinTransformer``: the same modules,
parameter names and state-dict keys (mmpretrain Swin checkpoints load as they are), with each
stage's blocks driven by :meth:`CrossLayerSwin._block_forward` so that a block's q, k, v can leave
it and an outside value can enter it.

**One spatial layout for every block.** A block of mmpretrain's Swin pads its normed input to whole
windows, rolls it by ``-shift`` (odd blocks), cuts windows and projects q, k, v per window. The
projection is per token, so here it is applied to the padded map *before* rolling: each block's
q, k, v are (B, Hp, Wp, C) maps in the unshifted layout, identical for all blocks of a stage
(the padding depends only on the map size and the window). A block then rolls and windows
whatever it attends over with its own shift; the numbers are mmpretrain's up to float rounding.

**BroadSwinTransformer** (broad attention per stage). After the last block of a stage, the q, k, v
maps of all the stage's blocks are cut into *unshifted* windows, and one parameter-free window
attention runs over them joined on the channel axis::

    A         = softmax(sum_l q_l k_l^T * d^-1/2)     per window and head (no bias, no mask)
    Out_broad = BPool(A [v_1 .. v_L])                 (head, layer, d) channels -> C
    x         = x_last + broad_weight * Out_broad     before the stage's patch merging

with :func:`broad_attention`, as in :class:`BViT`. Why per stage: q, k, v change width and token
count at every patch merging, so a join across stages would need new projections (BViT adds no
parameters) or a pooling the paper does not describe; within a stage every block has the same
heads, width and map. Why unshifted windows: the shifted blocks' own windows straddle the unshifted
ones, so no single window grid fits all blocks; the regular grid needs no mask, and in the sum of
logits each block contributes its q_l k_l^T for the same token pairs. Padded tokens stay unmasked
keys, as in mmpretrain's blocks. No parameter is added.

**DenseSwinTransformer** (dense links within a stage). Block i of a stage attends with its own
(position-biased, shift-masked) window attention map over ``v_i + sum_{j<i} w_ij v_j``. The mix is
formed on the unshifted spatial maps (:class:`DenseValues`) and then rolled and windowed with
block i's shift, so every earlier value is seen through block i's windows (token for token the
same as rolling each v_j and attending over it separately, by linearity). Each block's attention
holds ``mix_weight``: one standard-normal weight per block of its stage (the released Dense-ViT
layout); entries j >= i are unused and get a zero gradient, so every parameter is in the graph
and DDP needs no ``find_unused_parameters``. Stages are separated by patch merging (the paper's
pyramid figure), so values are never mixed across stages.

Differences from mmpretrain's ``SwinTransformer`` (constructor arguments are the same):

* ``frozen_stages`` follows the package (and mmdet's Swin): -1 none, 0 the patch embedding,
  i the patch embedding and the first i stages. mmpretrain's Swin freezes stages 0..i, one more.
* Without ``pad_small_map`` a map smaller than the window is padded to one window and not
  shifted (mmpretrain raises there), so any input size works; where mmpretrain runs, the two agree.
* Errors are ``ValueError``\\ s naming the accepted values; a ``Pretrained`` ``init_cfg`` must fit
  (see :class:`~visattn_mm.models.backbones.base.BaseBackbone`).
"""
from copy import deepcopy
from functools import partial
from typing import Any, Final, List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.models.utils import WindowMSA as MMPWindowMSA
from torch import nn

from visattn_mm.registry import MODELS
from ..layers import (DenseValueStore, ShiftMaskCache, attend_windows, broad_attention,
                      gather_relative_bias, pad_to_multiple, resize_pos_embed, use_fused_attn,
                      window_partition, window_reverse)
from .base import BaseBackbone, maybe_checkpoint


class CrossLayerWindowMSA(MMPWindowMSA):
    """mmpretrain's ``WindowMSA`` (same parameters) that can attend over q, k, v it is handed.

    ``forward(x, mask)`` is mmpretrain's window attention; :meth:`attend` is its second half, for
    q, k, v projected by the caller. The fused path (``F.scaled_dot_product_attention``) is chosen
    once, in ``__init__`` (:func:`use_fused_attn`).
    """

    fused_attn: Final[bool]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fused_attn = use_fused_attn()

    @property
    def head_dims(self) -> int:
        return self.embed_dims // self.num_heads

    def relative_position_bias(self) -> torch.Tensor:
        """The bias B of the window's token pairs: (heads, N, N), N = ws * ws."""
        return gather_relative_bias(self.relative_position_bias_table,
                                    self.relative_position_index)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(Bw, N, C) windows -> (Bw, heads, N, d)."""
        Bw, N, _ = t.shape
        return t.view(Bw, N, self.num_heads, self.head_dims).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``Proj(softmax(q k^T * scale + B + M) v)`` per window and head.

        Args:
            q, k, v (Tensor): windows (B * nW, N, C), channels ordered (head, d).
            mask (Tensor, optional): the shift mask M, (nW, N, N). Defaults to None.

        Returns:
            Tensor: (B * nW, N, C).
        """
        q, k, v = (self.split_heads(t) for t in (q, k, v))  # (Bw, h, N, d)
        out = attend_windows(q, k, v, self.relative_position_bias(), mask, self.scale,
                             dropout_p=self.attn_drop.p if self.training else 0.,
                             fused=self.fused_attn)  # (Bw, N, C)
        return self.proj_drop(self.proj(out))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """mmpretrain's window attention: x (B * nW, N, C) -> (B * nW, N, C)."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.attend(q, k, v, mask)


class DenseWindowMSA(CrossLayerWindowMSA):
    """:class:`CrossLayerWindowMSA` with dense attention's mixing weights.

    Args:
        *args, **kwargs: see mmpretrain's ``WindowMSA``.
        num_links (int): length of ``mix_weight``: the depth of the stage. Defaults to 2.
    """

    def __init__(self, *args, num_links: int = 2, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mix_weight = nn.Parameter(torch.randn(num_links))  # released init: N(0, 1)


def window_shape(attn: nn.Module, H: int, W: int) -> Tuple[int, int]:
    """(window side, roll) of an mmpretrain ``ShiftWindowMSA`` on an H x W map.

    As mmpretrain: a shifted block rolls by ``-shift_size``; with ``pad_small_map`` the window is
    kept and small maps are padded; without it a map whose short side is at most the window is
    not shifted (mmpretrain raises when it is smaller; here it is padded to one window).
    """
    ws, shift = attn.window_size, attn.shift_size
    if min(H, W) <= ws and not attn.pad_small_map:
        shift = 0
    return ws, shift


def to_windows(t: torch.Tensor, window_size: int, shift: int) -> torch.Tensor:
    """A padded map (B, Hp, Wp, C) rolled by ``-shift`` and cut: (B * nW, ws * ws, C)."""
    if shift:
        t = torch.roll(t, shifts=(-shift, -shift), dims=(1, 2))
    return window_partition(t, window_size)


def from_windows(windows: torch.Tensor, window_size: int, shift: int, Hp: int,
                 Wp: int) -> torch.Tensor:
    """Inverse of :func:`to_windows`: (B * nW, ws * ws, C) -> (B, Hp, Wp, C), unshifted."""
    t = window_reverse(windows, window_size, Hp, Wp)
    if shift:
        t = torch.roll(t, shifts=(shift, shift), dims=(1, 2))
    return t


def _with_window_msa(stage_cfgs: Union[dict, Sequence[dict], None], depths: Sequence[int],
                     window_msa: type, extra: Sequence[dict]) -> List[dict]:
    """Per-stage configs whose blocks build ``window_msa`` (with ``extra[i]``) in stage i."""
    if stage_cfgs is None:
        stage_cfgs = {}
    if isinstance(stage_cfgs, dict):
        stage_cfgs = [stage_cfgs] * len(depths)
    if len(stage_cfgs) != len(depths):
        raise ValueError(f'stage_cfgs has {len(stage_cfgs)} entries for {len(depths)} stages')
    result = []
    for cfg, depth, more in zip(stage_cfgs, depths, extra):
        cfg = deepcopy(dict(cfg))
        blocks = cfg.get('block_cfgs', {})
        blocks = [deepcopy(blocks) for _ in range(depth)] if isinstance(blocks, dict) \
            else [deepcopy(dict(b)) for b in blocks]
        for block in blocks:
            block['attn_cfgs'] = dict(block.get('attn_cfgs', {}), window_msa=window_msa, **more)
        cfg['block_cfgs'] = blocks
        result.append(cfg)
    return result


class CrossLayerSwin(SwinTransformer, BaseBackbone):
    """mmpretrain's Swin Transformer with stage-wise hooks for sharing q, k, v between blocks.

    The blocks of a stage run one after another through :meth:`_block_forward`; a family says
    what a block attends over (:meth:`_value`), what is kept of it (:meth:`_remember`) and what
    is done with that after the stage's last block (:meth:`_merge`).

    Args:
        arch (str | dict): ``'tiny'``, ``'small'``, ``'base'``, ``'large'`` (or ``'t'``, ...), or
            a dict with exactly ``embed_dims``, ``depths`` and ``num_heads``. Defaults to
            ``'tiny'``.
        img_size (int | tuple): the usual input size (for the absolute position table).
            Defaults to 224.
        patch_size (int): patch side. Defaults to 4.
        in_channels (int): image channels. Defaults to 3.
        window_size (int): window side. Defaults to 7.
        drop_rate (float): dropout after the patch embedding. Defaults to 0.
        drop_path_rate (float): stochastic depth, rising linearly over the blocks. Defaults to
            0.1.
        out_indices (int | Sequence[int]): stages whose outputs are returned, 0..3 (strides 4,
            8, 16, 32), negatives from the end. Defaults to (3,).
        out_after_downsample (bool): return a stage's map after its patch merging. Defaults to
            False.
        use_abs_pos_embed (bool): absolute position embedding. Defaults to False.
        interpolate_mode (str): how the absolute table is resized. Defaults to ``'bicubic'``.
        with_cp (bool): gradient checkpointing per block. Defaults to False.
        frozen_stages (int): as mmdet's SwinTransformer: frozen_stages=0 freezes the patch
            embedding, k>0 also stages 0..k-1 (with their output norms); -1 freezes nothing.
            mmpretrain's Swin freezes one stage more (k=0 already stage 0 and its norm).
            Defaults to -1.
        norm_eval (bool): BatchNorm layers stay in eval mode while training. Defaults to False.
        pad_small_map (bool): see :func:`window_shape`. Defaults to False.
        norm_cfg (dict, optional): the output norms; None: none. Defaults to
            ``dict(type='LN')``.
        stage_cfgs (dict | Sequence[dict]): extra stage configs, as in mmpretrain. Defaults to
            an empty dict.
        patch_cfg (dict): extra patch-embedding config. Defaults to an empty dict.
        init_cfg (dict | list, optional): a ``Pretrained`` entry (with ``prefix``) loads a
            checkpoint that must fit. Defaults to None.
    """
    essential_keys = frozenset({'embed_dims', 'depths', 'num_heads'})
    stage_desc = '0..3 = strides 4, 8, 16, 32'
    optional_pretrained = r'^norm\d+\.'
    # re.match: anchored at the start of the key
    resizable_pretrained = r'(absolute_pos_embed|.*\.relative_position_(bias_table|index))$'
    window_msa_cls: type = CrossLayerWindowMSA

    def __init__(self, arch: Union[str, dict] = 'tiny', img_size: Union[int, tuple] = 224,
                 patch_size: int = 4, in_channels: int = 3, window_size: int = 7,
                 drop_rate: float = 0., drop_path_rate: float = 0.1,
                 out_indices: Union[int, Sequence[int]] = (3,),
                 out_after_downsample: bool = False, use_abs_pos_embed: bool = False,
                 interpolate_mode: str = 'bicubic', with_cp: bool = False,
                 frozen_stages: int = -1, norm_eval: bool = False, pad_small_map: bool = False,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 stage_cfgs: Union[dict, Sequence[dict], None] = None,
                 patch_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        settings = self._parse_arch(arch)
        depths, heads = list(settings['depths']), list(settings['num_heads'])
        if len(depths) != len(heads) or not depths:
            raise ValueError(f'arch depths {depths} and num_heads {heads} must be non-empty and '
                             'of the same length (one entry per stage)')
        if in_channels < 1:
            raise ValueError(f'in_channels must be positive, got {in_channels}')
        stage_cfgs = _with_window_msa(stage_cfgs, depths, self.window_msa_cls,
                                      [self._window_msa_cfg(d) for d in depths])
        # out_indices=(): the output norms are built below, from the checked indices
        super().__init__(arch=settings, img_size=img_size, patch_size=patch_size,
                         in_channels=in_channels, window_size=window_size, drop_rate=drop_rate,
                         drop_path_rate=drop_path_rate, out_indices=(),
                         out_after_downsample=out_after_downsample,
                         use_abs_pos_embed=use_abs_pos_embed, interpolate_mode=interpolate_mode,
                         with_cp=with_cp, frozen_stages=-1, norm_eval=norm_eval,
                         pad_small_map=pad_small_map, norm_cfg=norm_cfg, stage_cfgs=stage_cfgs,
                         patch_cfg=patch_cfg or {}, init_cfg=init_cfg)
        self.num_stages = len(depths)
        self.stage_desc = f'0..{self.num_stages - 1}'
        self.in_channels = in_channels
        self.with_cp = with_cp
        self.out_indices = self._parse_out_indices(out_indices)
        self.frozen_stages = self._check_frozen_stages(frozen_stages)
        for i in self.out_indices:  # one output norm per out index, as mmpretrain names them
            norm = build_norm_layer(norm_cfg, self.num_features[i])[1] if norm_cfg \
                else nn.Identity()
            self.add_module(f'norm{i}', norm)
        for stage in self.stages:  # the blocks of a stage see maps of one size
            mask = ShiftMaskCache()
            for block in stage.blocks:
                block.attn.shift_mask = mask
        self._build_shared_parts()
        self._freeze_stages()

    # ------------------------------------------------------------------ family hooks
    def _window_msa_cfg(self, depth: int) -> dict:
        """Extra arguments of the window attention of a stage of ``depth`` blocks."""
        return {}

    def _build_shared_parts(self) -> None:
        """The parameter-free parts the blocks share (e.g. the dense value store)."""

    def _value(self, index: int, w_msa: CrossLayerWindowMSA, v: torch.Tensor,
               kept: Sequence[Any]) -> torch.Tensor:
        """What block ``index`` of a stage attends over, given its value map and what was kept
        so far."""
        return v

    def _remember(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
        """What is kept of a block (its q, k, v maps, each (B, Hp, Wp, C))."""
        return None

    def _stage_memory(self, stage: nn.Module) -> List[Any]:
        """What a stage's memory starts with (what its blocks keep is appended)."""
        return []

    def _merge(self, stage: nn.Module, x: torch.Tensor, hw: Tuple[int, int],
               kept: List[Any]) -> torch.Tensor:
        """The stage's last block output (B, H*W, C) combined with what was kept."""
        return x

    # ------------------------------------------------------------------ freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules = [self.patch_embed, self.drop_after_pos, *self.stages[:self.frozen_stages]]
        modules += [getattr(self, f'norm{i}') for i in self.out_indices
                    if i < self.frozen_stages]
        return modules

    def _freeze_stages(self) -> None:
        BaseBackbone._freeze_stages(self)
        if self.frozen_stages >= 0 and self.use_abs_pos_embed:
            self.absolute_pos_embed.requires_grad = False

    def train(self, mode: bool = True) -> 'CrossLayerSwin':
        return BaseBackbone.train(self, mode)

    # ------------------------------------------------------------------ forward
    def _block_forward(self, block: nn.Module, index: int, x: torch.Tensor,
                       hw: Tuple[int, int], kept: Sequence[Any]) -> Tuple[torch.Tensor, Any]:
        """One mmpretrain ``SwinBlock`` with its q, k, v on the spatial layout.

        Args:
            block: the block (its ``attn.w_msa`` is a :class:`CrossLayerWindowMSA`).
            index (int): its place in the stage.
            x (Tensor): (B, H*W, C).
            hw (tuple): (H, W).
            kept (Sequence): what the stage kept of its earlier blocks.

        Returns:
            tuple: the block's output (B, H*W, C) and what is kept of it.
        """
        (H, W), (B, L, C) = hw, x.shape
        attn = block.attn
        ws, shift = window_shape(attn, H, W)
        # zero tokens to whole windows, as mmpretrain
        normed = pad_to_multiple(block.norm1(x).view(B, H, W, C), ws, dims=(-3, -2))
        Hp, Wp = normed.shape[1:3]
        q, k, v = attn.w_msa.qkv(normed).chunk(3, dim=-1)  # (B, Hp, Wp, C) each, unshifted
        value = self._value(index, attn.w_msa, v, kept)
        mask = attn.shift_mask(Hp, Wp, ws, -shift, x.device) if shift else None
        out = attn.w_msa.attend(*(to_windows(t, ws, shift) for t in (q, k, value)), mask=mask)
        out = from_windows(out, ws, shift, Hp, Wp)[:, :H, :W].reshape(B, L, C)
        x = x + attn.drop(out)
        x = block.ffn(block.norm2(x), identity=x)
        return x, self._remember(q, k, v)

    def _stage_forward(self, stage: nn.Module, x: torch.Tensor,
                       hw: Tuple[int, int]) -> torch.Tensor:
        """The blocks of a stage and the merge (no patch merging): (B, H*W, C) -> same."""
        kept: List[Any] = self._stage_memory(stage)
        for index, block in enumerate(stage.blocks):
            earlier = tuple(kept)  # a snapshot: a checkpoint recomputes with the same arguments
            x, mine = maybe_checkpoint(self.with_cp, partial(self._block_forward, block, index),
                                       x, hw, earlier)
            if mine is not None:
                kept.append(mine)
        return self._merge(stage, x, hw, kept)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            x (Tensor): images (B, in_channels, H, W), any size.

        Returns:
            tuple: per out index i, the stage's map (B, C_i, H_i, W_i).
        """
        self._check_input(x)
        x, hw = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + resize_pos_embed(self.absolute_pos_embed, self.patch_resolution, hw,
                                     self.interpolate_mode, self.num_extra_tokens)
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = self._stage_forward(stage, x, hw)
            if stage.downsample is not None and self.out_after_downsample:
                x, hw = stage.downsample(x, hw)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(x)  # (B, H*W, C_i)
                outs.append(out.view(-1, *hw, self.num_features[i]).permute(0, 3, 1, 2)
                            .contiguous())
            if stage.downsample is not None and not self.out_after_downsample:
                x, hw = stage.downsample(x, hw)
        return tuple(outs)


@MODELS.register_module()
class BroadSwinTransformer(CrossLayerSwin):
    """Swin Transformer with broad attention in every stage (see the module doc).

    Same parameters and state-dict keys as mmpretrain's ``SwinTransformer`` of the same arch.

    Args:
        broad_weight (float): weight of the broad output added to each stage's last block.
            Defaults to 0.4 (BViT's constant).
        **kwargs: see :class:`CrossLayerSwin` (mmpretrain's ``SwinTransformer`` arguments).
    """

    def __init__(self, *args, broad_weight: float = 0.4, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.broad_weight = broad_weight

    def _remember(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
        return q, k, v

    def _merge(self, stage: nn.Module, x: torch.Tensor, hw: Tuple[int, int],
               kept: List[Any]) -> torch.Tensor:
        (H, W), (B, L, C) = hw, x.shape
        w_msa = stage.blocks[-1].attn.w_msa
        ws = stage.blocks[-1].attn.window_size
        Hp, Wp = kept[0][0].shape[1:3]  # the same padded map for every block of the stage
        # every block's q, k, v in the same unshifted windows: (B*nW, h, N, d) each
        qs, ks, vs = ([w_msa.split_heads(window_partition(t, ws)) for t in maps]
                      for maps in zip(*kept))
        broad = broad_attention(qs, ks, vs, w_msa.head_dims ** -0.5, C,
                                fused=w_msa.fused_attn)  # (B*nW, N, C)
        broad = window_reverse(broad, ws, Hp, Wp)[:, :H, :W].reshape(B, L, C)
        return x + self.broad_weight * broad


@MODELS.register_module()
class DenseSwinTransformer(CrossLayerSwin):
    """Swin Transformer with dense attention within each stage (see the module doc).

    mmpretrain's ``SwinTransformer`` plus one ``mix_weight`` vector per block
    (``stages.{s}.blocks.{b}.attn.w_msa.mix_weight``, length = the stage's depth), which an
    mmpretrain Swin checkpoint does not have: ``Pretrained`` loading leaves them at their init.
    The paper reports Swin-T (``'tiny'``) and Swin-S (``'small'``).

    Args:
        **kwargs: see :class:`CrossLayerSwin` (mmpretrain's ``SwinTransformer`` arguments).
    """
    window_msa_cls = DenseWindowMSA
    optional_pretrained = r'(norm\d+\.|.*\.mix_weight$)'

    def _build_shared_parts(self) -> None:
        self.dense_values = DenseValueStore()

    def _window_msa_cfg(self, depth: int) -> dict:
        return dict(num_links=depth)

    def _stage_memory(self, stage: nn.Module) -> List[Any]:
        # (with gradient checkpointing a block runs again in backward)
        return [self.dense_values.new_pass(len(stage.blocks), checkpointing=self.with_cp)]

    def _value(self, index: int, w_msa: CrossLayerWindowMSA, v: torch.Tensor,
               kept: Sequence[Any]) -> torch.Tensor:
        return kept[0].mix(index, v, w_msa.mix_weight)  # v + sum_j w_j v_j, (B, Hp, Wp, C)
