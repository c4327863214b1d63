"""PSLT: a light-weight vision transformer with ladder self-attention and progressive shift.

Wu, Zheng, Lu, Tian, TPAMI 2023 (arXiv 2304.03481); numerics follow the authors' released code
(github.com/lazyGj/PSLT, ``classification/pslt.py`` and ``detection/pslt.py``).

Layout (C0 = ``embed_dims``; strides for a 224 input)::

    stem      3x (conv3x3 -> GELU -> BN), the first with stride 2          C0,    /2
    stage 1   MobileNetV2+SE blocks, the first with stride 2               2 C0,  /4
    stage 2   MobileNetV2+SE blocks, the first with stride 2               4 C0,  /8
    stage 3   one MobileNetV2+SE block (stride 2), then ladder blocks      8 C0,  /16
    stage 4   patch merging, then ladder blocks                            16 C0, /32

A ladder block splits the C channels into three branches x_0, x_1, x_2 (C/3 each). Branch i is a
pre-norm window-attention + light-MLP sub-block with its own weights and shift (0, -ws/2, +ws/2:
"progressive shift", the same in every block). Branch i >= 1 takes its value from the previous
branch's output y_{i-1} and adds LN(x_i) inside the attention (the released inner residual):

    y_0 = SubBlock_0(x_0);    y_i = SubBlock_i(x_i, v = y_{i-1})
    Y   = [y_0, y_1, y_2]
    Z   = Y * sigmoid(FC2(ReLU(FC1(Y))))             (pixel-adaptive fusion, per token)
    out = Z + Linear(Z)
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from torch import nn

from visattn_mm.registry import MODELS
from .base import BaseBackbone, maybe_checkpoint
from ..layers import (ConvGeluNorm, DropPath, ExternalValueWindowMSA, Linear, ShiftWindowMSA,
                      WindowMSA, pad_to_multiple)

NUM_BRANCHES = 3


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation on a map: global average pool, FC -> ReLU -> FC -> sigmoid, scale.

    Args:
        channels (int): channels C.
        ratio (int): bottleneck reduction (the released blocks use 2). Defaults to 2.
    """

    def __init__(self, channels: int, ratio: int = 2) -> None:
        super().__init__()
        self.fc1 = Linear(channels, channels // ratio, act='relu')
        self.fc2 = Linear(channels // ratio, channels, act='sigmoid')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        w = self.fc2(self.fc1(x.mean(dim=(2, 3))))  # (B, C)
        return x * w[:, :, None, None]


class MV2BlockSE(nn.Module):
    """MobileNetV2 inverted residual with squeeze-excitation (released ``MV2Block_SE``).

    1x1 expand -> GELU -> BN, 3x3 depthwise (stride) -> GELU -> BN, 1x1 project -> BN, SE;
    identity shortcut when the shape is kept. Convs have no bias.

    Args:
        in_channels (int): input channels C_in.
        out_channels (int): output channels C_out.
        stride (int): 1 or 2 (on the depthwise conv). Defaults to 1.
        expansion (int): hidden width = expansion * C_in. Defaults to 4.
        norm_cfg (dict, optional): the BN config. Defaults to None: ``dict(type='BN')``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 4,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        hidden_dims = in_channels * expansion
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand = ConvGeluNorm(in_channels, hidden_dims, 1, norm_cfg=norm_cfg)
        self.depthwise = ConvGeluNorm(hidden_dims, hidden_dims, 3, stride, groups=hidden_dims,
                                      norm_cfg=norm_cfg)
        self.project = ConvGeluNorm(hidden_dims, out_channels, 1, act=False, norm_cfg=norm_cfg)
        self.se = SqueezeExcite(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        out = self.se(self.project(self.depthwise(self.expand(x))))
        return x + out if self.use_shortcut else out


class LightMlp(nn.Module):
    """The ladder branches' FFN (released ``Mlp_Light``), run on the 2-D map.

    1x1 -> GELU -> BN, 3x3 depthwise -> GELU -> BN, 1x1 -> BN, all convs with bias.

    Args:
        embed_dims (int): channels C (input = output channels).
        hidden_dims (int): hidden width (the released ``dim * mlp_ratio / 4`` = C).
        norm_cfg (dict, optional): the BN config. Defaults to None: ``dict(type='BN')``.
    """

    def __init__(self, embed_dims: int, hidden_dims: int,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.pw1 = ConvGeluNorm(embed_dims, hidden_dims, 1, bias=True, norm_cfg=norm_cfg)
        self.dw = ConvGeluNorm(hidden_dims, hidden_dims, 3, groups=hidden_dims, bias=True,
                               norm_cfg=norm_cfg)
        self.pw2 = ConvGeluNorm(hidden_dims, embed_dims, 1, bias=True, act=False,
                                norm_cfg=norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        x = self.pw2(self.dw(self.pw1(x)))
        return x.permute(0, 2, 3, 1)  # (B, H, W, C)


class LadderBranch(nn.Module):
    """One branch of a ladder block (released ``LadderSABlock``).

    ``y' = x + DP(A)``, ``y = y' + DP(MLP(LN2(y')))`` where A is window attention on LN1(x) with
    this branch's shift; for a ladder branch (i >= 1) the value is the previous branch's output
    and ``A = Proj(softmax(q k^T s + B + M) v) + LN1(x)``.

    Args:
        embed_dims (int): channels d of the branch (C / 3 of its block).
        num_heads (int): heads (head_dims = d / num_heads).
        window_size (int): window side ws.
        shift_size (int): signed cyclic shift of this branch (see :class:`ShiftWindowMSA`).
        ladder (bool): take v from outside (every branch but the first).
        drop_path_rate (float): stochastic depth rate of both residuals. Defaults to 0.
        norm_cfg (dict, optional): the BN config of the MLP. Defaults to None:
            ``dict(type='BN')``.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int,
                 ladder: bool, drop_path_rate: float = 0.,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        self.ladder = ladder
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ShiftWindowMSA(embed_dims, num_heads, window_size, shift_size,
                                   window_msa=ExternalValueWindowMSA if ladder else WindowMSA)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = LightMlp(embed_dims, embed_dims, norm_cfg=norm_cfg)
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor, v: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            x (Tensor): this branch's channels x_i, (B, H, W, d).
            v (Tensor, optional): the previous branch's output y_{i-1}, (B, H, W, d), for a
                ladder branch. Defaults to None (the first branch).

        Returns:
            Tensor: y_i, (B, H, W, d).
        """
        y = self.norm1(x)
        a = self.attn(y, v)
        if self.ladder:
            a = a + y  # the released inner residual LN1(x_i), added to the attention output
        x = self.drop_path.add(x, a)
        return self.drop_path.add(x, self.mlp(self.norm2(x)))


class PixelAdaptiveFusion(nn.Module):
    """Fuse the branch outputs: a per-token channel gate (SE without pooling), then Z + Linear(Z).

    Args:
        embed_dims (int): channels C (all branches together).
        ratio (int): gate bottleneck reduction. Defaults to 2.
    """

    def __init__(self, embed_dims: int, ratio: int = 2) -> None:
        super().__init__()
        self.fc1 = Linear(embed_dims, embed_dims // ratio, act='relu')
        self.fc2 = Linear(embed_dims // ratio, embed_dims, act='sigmoid')
        self.proj = Linear(embed_dims, embed_dims)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: (B, H, W, C) -> (B, H, W, C)."""
        z = y * self.fc2(self.fc1(y))  # each pixel its own channel weights
        return z + self.proj(z)


class LadderBlock(nn.Module):
    """Ladder self-attention block: three branches passing values down, then fusion.

    Args:
        embed_dims (int): channels C, divisible by 3 * num_heads.
        num_heads (int): heads of every branch.
        window_size (int): ws of every branch. Defaults to 7.
        shift (bool): use the progressive shift; False: no branch shifts. Defaults to True.
        drop_path_rate (float): stochastic depth rate of the branches. Defaults to 0.
        norm_cfg (dict, optional): the BN config. Defaults to None: ``dict(type='BN')``.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int = 7,
                 shift: bool = True, drop_path_rate: float = 0.,
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__()
        branch_dims = embed_dims // NUM_BRANCHES
        s = window_size // 2 if shift else 0
        # progressive shift: none, roll -s (Swin's direction), roll +s (the mirror)
        shifts = (0, -s, s)
        self.branches = nn.ModuleList(
            LadderBranch(branch_dims, num_heads, window_size, shift_size, ladder=i > 0,
                         drop_path_rate=drop_path_rate, norm_cfg=norm_cfg)
            for i, shift_size in enumerate(shifts))
        self.fusion = PixelAdaptiveFusion(embed_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        ys: List[torch.Tensor] = []
        v: Optional[torch.Tensor] = None
        for branch, x_i in zip(self.branches, x.chunk(NUM_BRANCHES, dim=-1)):
            v = branch(x_i, v)  # y_i, the next branch's value
            ys.append(v)
        return self.fusion(torch.cat(ys, dim=-1))


class PatchMerging(nn.Module):
    """Swin patch merging: 2x2 neighbours concatenated -> LN(4C) -> Linear(4C, 2C, no bias).

    An odd side is zero-padded at the bottom/right first. The concatenation order is the
    released one: (even row, even col), (odd, even), (even, odd), (odd, odd).

    Args:
        in_channels (int): input channels C; the output has 2C.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * in_channels)
        self.reduction = Linear(4 * in_channels, 2 * in_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, 2C, ceil(H/2), ceil(W/2))."""
        x = pad_to_multiple(x, 2)  # (B, C, H + H%2, W + W%2)
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2],
                       x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], dim=1)  # (B, 4C, H/2, W/2)
        x = self.reduction(self.norm(x.permute(0, 2, 3, 1)))  # (B, H/2, W/2, 2C)
        return x.permute(0, 3, 1, 2)  # (B, 2C, H/2, W/2)


class PSLTStage(nn.Module):
    """A stride-2 ``downsample`` followed by ``blocks``.

    Args:
        downsample (nn.Module): (B, C_in, H, W) -> (B, C, H/2, W/2).
        blocks (Sequence[nn.Module]): blocks of the stage; on (B, H, W, C) maps when
            ``nhwc_blocks`` (ladder blocks), else on (B, C, H, W) maps.
        nhwc_blocks (bool): the blocks' layout.
        with_cp (bool): checkpoint each block while the input requires grad. Defaults to False.

    The (B, C, H, W) result of ladder blocks is a view of their (B, H, W, C) map: channels-last
    memory, which a channels-last backbone keeps (``keep_nhwc_memory``) and an NCHW one copies.
    """
    keep_nhwc_memory = False

    def __init__(self, downsample: nn.Module, blocks: Sequence[nn.Module],
                 nhwc_blocks: bool, with_cp: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)
        self.nhwc_blocks = nhwc_blocks
        self.with_cp = with_cp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, H, W) -> (B, C, H/2, W/2)."""
        x = self.downsample(x)
        if self.nhwc_blocks:
            x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        for block in self.blocks:
            x = maybe_checkpoint(self.with_cp, block, x)
        if self.nhwc_blocks:
            x = x.permute(0, 3, 1, 2)  # (B, C, H, W), channels-last memory
            if not self.keep_nhwc_memory:
                x = x.contiguous()
        return x


@MODELS.register_module()
class PSLT(BaseBackbone):
    """PSLT backbone (ladder self-attention with progressive shift).

    Args:
        arch (str | dict): a name from ``arch_zoo`` ('tiny', 'base', 'large'; the paper's 9.2M
            model is 'base') or a dict with ``essential_keys`` (and optionally ``window_size``,
            7 by default): ``embed_dims`` C0; ``depths`` (4 ints): MV2 blocks of stages 1 and 2
            (the first is the strided one), ladder blocks of stages 3 and 4; ``num_heads``
            (2 ints) of the ladder stages. Defaults to ``'base'``.
        in_channels (int): image channels. Defaults to 3.
        out_indices (Sequence[int]): stages to output (0..3, negatives count from the end); maps
            of 2C0, 4C0, 8C0, 16C0 channels at strides 4, 8, 16, 32. Defaults to ``(3,)``.
        frozen_stages (int): as mmdet's SwinTransformer: frozen_stages=0 freezes the stem, k>0
            also stages 0..k-1 (numbered as in ``out_indices``; with all four, the final norm
            too); -1 freezes nothing. Defaults to -1.
        norm_eval (bool): keep BatchNorms in eval mode while training. Defaults to False.
        with_cp (bool): gradient checkpointing of each block (only while the input requires
            grad). Defaults to False.
        drop_path_rate (float): stochastic depth, rising linearly over the ladder blocks only.
            Defaults to 0.2.
        ladder_shift (Sequence[bool]): whether the ladder blocks of stages 3 and 4 use the
            progressive shift (branch shifts 0, -ws/2, +ws/2). Whatever this says, a map whose
            short side is <= ws is one window wide and is not shifted (the small-map rule).
            False reproduces a state of the released detection backbone: the first time one of
            its blocks sees such a small map it turns its shift off for good (e.g. stage 4 after
            any input whose short side is <= 224 pixels). Defaults to ``(True, True)``.
        final_norm (bool): LayerNorm on the last stage's output, as the released classifier does
            before pooling (set it for classification; the detection backbone has none).
            Defaults to False.
        norm_cfg (dict): the norm of the conv parts (BN; e.g. SyncBN for detection). LayerNorms
            stay. Defaults to ``dict(type='BN')``.
        channels_last (bool, optional): keep the convolution weights and the maps
            channels-last (NHWC) inside the backbone (the ladder stages' (B, H, W, C) maps are
            then views, not copies); the outputs are returned contiguous (NCHW), equal to the
            NCHW model's to float rounding. Defaults to None: channels-last on the CPU, NCHW on
            other devices, chosen whenever the model is moved.
        init_cfg (dict | list[dict], optional): initialisation. Defaults to None: Linear
            trunc-normal(0.02) with zero bias, LayerNorm 1/0, as released.
    """

    # a detection checkpoint has no final norm
    optional_pretrained = r'^norm3\.'

    arch_zoo = {
        **dict.fromkeys(['t', 'tiny'],
                        {'embed_dims': 24, 'depths': (3, 3, 10, 3), 'num_heads': (4, 8)}),
        **dict.fromkeys(['b', 'base'],
                        {'embed_dims': 36, 'depths': (3, 3, 10, 3), 'num_heads': (4, 8)}),
        **dict.fromkeys(['l', 'large'],
                        {'embed_dims': 48, 'depths': (3, 3, 10, 3), 'num_heads': (4, 8)}),
    }
    essential_keys = {'embed_dims', 'depths', 'num_heads'}
    optional_keys = {'window_size': 7}
    resizable_pretrained = r'.*relative_position_bias_table$'  # resized by WindowMSA's hook
    stride = 32  # of the last stage; also the smallest input side accepted

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3,),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.2,
                 ladder_shift: Sequence[bool] = (True, True),
                 final_norm: bool = False,
                 norm_cfg: dict = dict(type='BN'),
                 channels_last: Optional[bool] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)]
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        C0 = self.arch_settings['embed_dims']
        depths = tuple(self.arch_settings['depths'])
        num_heads = tuple(self.arch_settings['num_heads'])
        window_size = self.arch_settings['window_size']
        self.channels = tuple(C0 * 2 ** (i + 1) for i in range(self.num_stages))
        self.in_channels = in_channels
        self.out_indices = self._parse_out_indices(out_indices)
        self.frozen_stages = self._check_frozen_stages(frozen_stages)
        self.norm_eval = norm_eval
        if len(ladder_shift) != 2:
            raise ValueError(f'ladder_shift needs one bool per ladder stage (3 and 4), '
                             f'got {ladder_shift}')

        self.stem = nn.Sequential(
            ConvGeluNorm(in_channels, C0 // 2, 3, stride=2, norm_cfg=norm_cfg),
            ConvGeluNorm(C0 // 2, C0, 3, norm_cfg=norm_cfg),
            ConvGeluNorm(C0, C0, 3, norm_cfg=norm_cfg))

        dpr = torch.linspace(0, drop_path_rate, depths[2] + depths[3]).tolist()
        ladder_rates = [dpr[:depths[2]], dpr[depths[2]:]]
        stages = []
        for i, c in enumerate(self.channels):
            c_in = C0 if i == 0 else self.channels[i - 1]
            if i < 2:  # MobileNetV2+SE stage
                down = MV2BlockSE(c_in, c, stride=2, norm_cfg=norm_cfg)
                blocks = [MV2BlockSE(c, c, norm_cfg=norm_cfg) for _ in range(depths[i] - 1)]
            else:  # ladder self-attention stage
                down = (MV2BlockSE(c_in, c, stride=2, norm_cfg=norm_cfg) if i == 2
                        else PatchMerging(c_in))
                heads = num_heads[i - 2]
                blocks = [LadderBlock(c, heads, window_size, bool(ladder_shift[i - 2]), rate,
                                      norm_cfg) for rate in ladder_rates[i - 2]]
            stages.append(PSLTStage(down, blocks, nhwc_blocks=i >= 2, with_cp=with_cp))
        self.stages = nn.ModuleList(stages)
        self.norm3 = nn.LayerNorm(self.channels[3]) if final_norm else None
        self._use_channels_last(channels_last)
        self._freeze_stages()

    def _memory_format_changed(self, channels_last: bool) -> None:
        for stage in self.stages:
            stage.keep_nhwc_memory = channels_last

    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        arch = super()._parse_arch(arch)
        C0, depths, heads = arch['embed_dims'], tuple(arch['depths']), tuple(arch['num_heads'])
        if len(depths) != 4 or min(depths[:2]) < 1 or min(depths[2:]) < 0:
            raise ValueError(f'depths must be 4 counts (MV2 blocks of stages 1-2, >= 1; ladder '
                             f'blocks of stages 3-4), got {depths}')
        if len(heads) != 2:
            raise ValueError(f'num_heads must give the heads of stages 3 and 4, got {heads}')
        for stage, h in ((3, heads[0]), (4, heads[1])):
            c = C0 * 2 ** stage
            if C0 % 2 or c % (NUM_BRANCHES * h):
                raise ValueError(f'embed_dims {C0} does not fit: stage {stage} has {c} channels, '
                                 f'which must split into {NUM_BRANCHES} branches of {h} heads '
                                 f'(and embed_dims must be even)')
        return dict(arch)

    def _frozen_modules(self) -> List[nn.Module]:
        """The stem (>= 0), stages 0..frozen_stages-1, and the final norm with all four."""
        if self.frozen_stages < 0:
            return []
        frozen = [self.stem, *self.stages[:self.frozen_stages]]
        if self.frozen_stages == self.num_stages and self.norm3 is not None:
            frozen.append(self.norm3)
        return frozen

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            x (Tensor): images (B, in_channels, H, W), any H, W >= 32.

        Returns:
            tuple[Tensor]: one map per ``out_indices`` entry: stage i is
            (B, C0 * 2^(i+1), H_i, W_i), with H_i = ceil(H / 2^(i+2)) (= H / stride for
            multiples of 32).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'PSLT expects images (B, {self.in_channels}, H, W): '
                             f'{self.in_channels} input channels, got shape {tuple(x.shape)}')
        if min(x.shape[-2:]) < self.stride:
            raise ValueError(f'input {x.shape[-2]}x{x.shape[-1]} is too small for PSLT: each side '
                             f'must be at least {self.stride} (one token at stride {self.stride})')
        # (the released stem pads odd sides to even first: the same as the conv's own zero pad)
        x = self.stem(self._channels_last_input(x))  # (B, C0, ceil(H/2), ceil(W/2))
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)  # (B, C_i, H_i, W_i)
            if i in self.out_indices:
                out = x
                if i == self.num_stages - 1 and self.norm3 is not None:
                    out = self.norm3(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
                outs.append(out.contiguous())
        return tuple(outs)
