"""FCViT: query-irrelevant global context fused into large-kernel depthwise convolutions.

"A Close Look at Spatial Modeling: From Attention to Convolution" (Ma et al., arXiv 2212.12552);
released code: github.com/ma-xu/FCViT (``models/fcvit.py``). The paper's observation is that the
attention maps of a trained ViT hardly depend on the query, so a single *global context* per image
(the mean token) can replace the query-key product. FCViT adds a context-weighted copy of that
context to the tokens and lets static depthwise and pointwise convolutions do the spatial mixing.

Layout (MetaFormer, four stages at strides 4/8/16/32)::

    stem (7x7/4 conv + BN) -> stage 0 -> down (3x3/2 conv + BN) -> stage 1 -> down -> stage 2
    -> down -> stage 3;  block: x + ls1 * TokenMixer(GN(x)),  x + ls2 * ChannelMixer(GN(x))

Only the released configuration is built (two context rounds, 11x11 kernels, weighted context with
8 heads, the competing context vector); the released code's unused options are left out.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer

from visattn_mm.compat import group_norm_input
from visattn_mm.registry import MODELS
from .base import BaseBackbone, maybe_checkpoint
from ..layers import ConvGelu, DropPath, Linear, is_channels_last


class GlobalContext(nn.Module):
    """Weighted query-irrelevant global context (released ``GlobalContext``, ``weighted_gc``).

    With ``g = mean_HW(x)`` split head-major into ``num_heads`` groups of ``d = C / num_heads``
    channels:

    1. similarity ``s[b, k, p] = <x[b, k, :, p], g[b, k, :]> / sqrt(d)``  (no softmax);
    2. standardised per sample over all heads and positions: ``(s - mean) / (std + eps)``
       with the unbiased std, then a per-head affine ``s * w_k + b_k``;
    3. context vector by competition: ``c = fc_out(max(fc_compete(g) split in two halves))``;
    4. output ``gc[b, k*d + j, p] = s[b, k, p] * c[b, k*d + j]``.

    Args:
        embed_dims (int): channels C; divisible by ``num_heads`` and ``reduction``.
        num_heads (int): context heads. Defaults to 8.
        reduction (int): bottleneck ratio of the context vector. Defaults to 8.
        eps (float): added to the std. Defaults to 1e-5.
    """

    def __init__(self, embed_dims: int, num_heads: int = 8, reduction: int = 8,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads) ** -0.5
        self.eps = eps
        # "Compete to compute": two candidate vectors of C/r, element-wise max, no activation.
        self.fc_compete = Linear(embed_dims, 2 * (embed_dims // reduction))
        self.fc_out = Linear(embed_dims // reduction, embed_dims)
        self.sim_weight = nn.Parameter(torch.ones(num_heads))
        self.sim_bias = nn.Parameter(torch.zeros(num_heads))

    # Every step below reads and writes the maps in the input's own memory layout: the
    # backbone runs channels-last, where a (B, heads, d, H*W) view of x would be a copy of it
    # and an NCHW context map would make the residual sum mix layouts.
    def similarity(self, x: torch.Tensor, g: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Steps 1-2: the standardised similarity after the per-head affine, (B, h, H*W).

        Args:
            x (Tensor): (B, C, H, W).
            g (Tensor, optional): ``x.mean(dim=(2, 3))`` when already computed. Defaults to None.
        """
        B, C = x.shape[:2]
        h = self.num_heads
        g = x.mean(dim=(2, 3)) if g is None else g  # (B, C)
        # <x[b, k, :, p], g[b, k, :]> for all heads k as one matmul: g laid out block-diagonally
        # as (B, h, C); x.flatten(2) is a view in either layout, so x is read once, not copied
        eye = torch.eye(h, device=x.device).to(x.dtype)  # (torch 2.1 has no bf16 eye)
        blocks = (g.view(B, h, 1, C // h) * eye[:, :, None]).reshape(B, h, C)
        sim = torch.matmul(blocks, x.flatten(2)) * self.scale  # (B, h, N)
        std, mean = torch.std_mean(sim, dim=(1, 2), keepdim=True)
        sim = (sim - mean) / (std + self.eps)
        return sim * self.sim_weight[:, None] + self.sim_bias[:, None]

    def _factors(self, x: torch.Tensor, nhwc: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """The similarity (B, h, N) and the context vector (B, C), shaped to broadcast over x's
        channels split into heads in x's memory order: (B, H, W, h, d) when ``nhwc``, else
        (B, h, d, H, W). Their product is step 4."""
        B, C, H, W = x.shape
        h = self.num_heads
        g = x.mean(dim=(2, 3))  # (B, C)
        sim = self.similarity(x, g)
        # step 3: the context vector, maxout over the two halves of the bottleneck
        c = self.fc_out(self.fc_compete(g).reshape(B, 2, -1).amax(dim=1))  # (B, C)
        if nhwc:  # (B, H, W, h, 1) and (B, 1, 1, h, d)
            return sim.transpose(1, 2).reshape(B, H, W, h, 1), c.view(B, 1, 1, h, C // h)
        return sim.view(B, h, 1, H, W), c.view(B, h, C // h, 1, 1)

    @staticmethod
    def _to_map(t: torch.Tensor, x: torch.Tensor, nhwc: bool) -> torch.Tensor:
        """A result split as in :meth:`_factors` back to x's (B, C, H, W) and layout."""
        B, C, H, W = x.shape
        return t.reshape(B, H, W, C).permute(0, 3, 1, 2) if nhwc else t.reshape(B, C, H, W)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> context map (B, C, H, W), in x's memory layout."""
        nhwc = is_channels_last(x)
        sim, c = self._factors(x, nhwc)
        return self._to_map(sim * c, x, nhwc)

    def add_to(self, x: torch.Tensor) -> torch.Tensor:
        """``x + self(x)`` as one pass over x (step 4 and the sum together)."""
        nhwc = is_channels_last(x)
        sim, c = self._factors(x, nhwc)
        parts = (x.permute(0, 2, 3, 1) if nhwc else x).reshape(
            torch.broadcast_shapes(sim.shape, c.shape))
        return self._to_map(torch.addcmul(parts, sim, c), x, nhwc)


class ContextConv(nn.Module):
    """One round of the token mixer: ``GELU(PW(GELU(PW(DW(x + GC(x))))))``.

    Args:
        embed_dims (int): channels C.
        kernel_size (int): depthwise kernel (11 in all released variants).
        hidden_dims (int): pointwise bottleneck width ``m = max(C / 8, 16)``.
        num_heads (int): context heads, see :class:`GlobalContext`.
        reduction (int): context bottleneck ratio, see :class:`GlobalContext`.
    """

    def __init__(self, embed_dims: int, kernel_size: int, hidden_dims: int, num_heads: int,
                 reduction: int) -> None:
        super().__init__()
        self.context = GlobalContext(embed_dims, num_heads, reduction)
        self.dwconv = nn.Conv2d(embed_dims, embed_dims, kernel_size, padding=kernel_size // 2,
                                groups=embed_dims)
        self.pw_reduce = ConvGelu(embed_dims, hidden_dims, 1)
        self.pw_expand = ConvGelu(hidden_dims, embed_dims, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        x = self.dwconv(self.context.add_to(x))  # context integrated before the static conv
        return self.pw_expand(self.pw_reduce(x))


class TokenMixer(nn.Module):
    """Two context-conv rounds in sequence, no inner residual (the block adds it).

    Args:
        embed_dims (int): channels C.
        kernel_size (int): depthwise kernel of each round. Defaults to 11.
        num_heads (int): context heads, see :class:`GlobalContext`. Defaults to 8.
        reduction (int): context bottleneck ratio, see :class:`GlobalContext`. Defaults to 8.
        rounds (int): context-conv rounds. Defaults to 2.
    """

    def __init__(self, embed_dims: int, kernel_size: int = 11, num_heads: int = 8,
                 reduction: int = 8, rounds: int = 2) -> None:
        super().__init__()
        hidden_dims = max(embed_dims // 8, 16)
        self.rounds = nn.Sequential(*[
            ContextConv(embed_dims, kernel_size, hidden_dims, num_heads, reduction)
            for _ in range(rounds)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        return self.rounds(x)


class ChannelMixer(nn.Module):
    """``fc2(GELU(DW3x3(fc1(x))))``: a 1x1 MLP with a 3x3 depthwise conv before the activation.

    Args:
        embed_dims (int): channels C.
        hidden_dims (int): hidden channels ``mlp_ratio * C``.
    """

    def __init__(self, embed_dims: int, hidden_dims: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(embed_dims, hidden_dims, 1)
        self.dwconv = ConvGelu(hidden_dims, hidden_dims, 3, padding=1, groups=hidden_dims)
        self.fc2 = nn.Conv2d(hidden_dims, embed_dims, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        return self.fc2(self.dwconv(self.fc1(x)))


class FCViTBlock(nn.Module):
    """MetaFormer block: pre-norm token and channel mixers, each with layer scale and drop path.

    Args:
        embed_dims (int): channels C.
        mlp_ratio (float): hidden ratio of the channel mixer.
        mixer_cfg (dict): keyword arguments of :class:`TokenMixer`.
        norm_cfg (dict): norm of both branches (GroupNorm with one group in the release).
        drop_path_rate (float): stochastic depth rate of this block. Defaults to 0.
        layer_scale_init_value (float): initial per-channel branch scale. Defaults to 1e-5.
    """

    def __init__(self, embed_dims: int, mlp_ratio: float, mixer_cfg: dict, norm_cfg: dict,
                 drop_path_rate: float = 0.0, layer_scale_init_value: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.token_mixer = TokenMixer(embed_dims, **mixer_cfg)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.channel_mixer = ChannelMixer(embed_dims, int(embed_dims * mlp_ratio))
        self.layer_scale_1 = nn.Parameter(torch.full((embed_dims,), layer_scale_init_value))
        self.layer_scale_2 = nn.Parameter(torch.full((embed_dims,), layer_scale_init_value))
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        # 1-D scales, as released (and so they count as flat, no-decay parameters); scale, drop
        # path and residual sum in one pass
        x = self.drop_path.add(x, self.token_mixer(self.norm1(x)),
                               self.layer_scale_1[:, None, None])
        return self.drop_path.add(x, self.channel_mixer(self.norm2(x)),
                                  self.layer_scale_2[:, None, None])


class ConvBN(nn.Sequential):
    """Overlapping patch embedding: ``BN(Conv(k, stride, pad=k//2))`` (stem and downsamples).

    Args:
        in_channels (int): input channels C_in.
        out_channels (int): output channels C_out.
        kernel_size (int): the conv's square kernel k.
        stride (int): the conv's stride.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_channels)


def released_init(m: nn.Module) -> None:
    """The released initialisation: convs N(0, 2 / fan_out) with ``fan_out = k*k*out/groups``
    (which torch's Kaiming does not divide by groups), linears truncated N(0, 0.02), zero biases.

    Args:
        m (nn.Module): the module, for ``nn.Module.apply``; others than Conv2d and Linear are
            left as they are.
    """
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
    elif isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
    else:
        return
    if m.bias is not None:
        nn.init.zeros_(m.bias)


@MODELS.register_module()
class FCViT(BaseBackbone):
    """FCViT backbone (tiny / B12 / B24 / B48), exact to the released ``fcvit_*`` models.

    Outputs are the raw stage maps passed through one norm each (``norm{i}``, GroupNorm(1, C)):
    for dense tasks take ``out_indices=(0, 1, 2, 3)``; for classification ``out_indices=(3,)``,
    whose ``norm3`` is the released head's GroupNorm before global average pooling.

    Args:
        arch (str | dict): a name in ``arch_zoo`` or a dict with ``depths``, ``widths`` and
            ``mlp_ratios`` (four entries each), optionally ``kernel_size`` (11), ``gc_heads`` (8)
            and ``gc_reduction`` (8). Defaults to ``'b12'``.
        in_channels (int): input channels. Defaults to 3.
        out_indices (int | Sequence[int]): stages to output, 0..3 (strides 4, 8, 16, 32);
            negatives count from the end. Outputs come in stage order. Defaults to ``(3,)``.
        norm_cfg (dict, optional): norm of the blocks and of each output.
            Defaults to None: ``dict(type='GN', num_groups=1)``.
        frozen_stages (int): the package-wide convention (mmdet's ResNet's): -1 freezes
            nothing, 0 the stem, ``i`` in 1..4 the stem and the first ``i`` stages (out indices
            ``0..i-1``) with the downsamples between them and their output norms. Frozen means no
            gradients and eval mode. Defaults to -1.
        norm_eval (bool): keep the BatchNorms (stem, downsamples) in eval mode while training.
            Defaults to False.
        with_cp (bool): recompute each block in backward (saves memory) when the input requires
            grad. Defaults to False.
        drop_path_rate (float): stochastic depth, linear over the global block index from 0 to
            this value. Defaults to 0.
        layer_scale_init_value (float): initial layer scale. Defaults to 1e-5.
        channels_last (bool, optional): keep the convolution weights and the maps
            channels-last (NHWC) inside the backbone; the outputs are returned contiguous
            (NCHW) for the necks. oneDNN's depthwise 11x11 and pointwise convolutions then run
            without layout reorders (docs/speed.md). Defaults to None: channels-last on the CPU,
            NCHW on other devices (GroupNorm on CUDA copies channels-last maps), chosen whenever
            the model is moved.
        init_cfg (dict | list[dict], optional): mmengine init config, e.g.
            ``dict(type='Pretrained', checkpoint=..., prefix='backbone.')``, applied by
            ``init_weights()`` on top of the released initialisation done at construction
            (mmengine's Kaiming cannot express it: it does not divide fan-out by groups).
            Defaults to None: the released initialisation only.

    Input ``(B, in_channels, H, W)``, any ``H, W >= 1``, in either memory format; output ``i``
    is ``(B, widths[i], ceil(H / 2**(i+2)), ceil(W / 2**(i+2)))``, contiguous.
    """

    # per-output norms: a classification checkpoint has only the last one (as released)
    optional_pretrained = r'^norm[0-3]\.'

    arch_zoo: Dict[str, dict] = {
        **dict.fromkeys(['t', 'tiny'], {'depths': [3, 3, 5, 2],  'widths': [32, 64, 160, 320],
                                        'mlp_ratios': [8, 8, 4, 4]}),
        **dict.fromkeys(['s12', 'b12'], {'depths': [2, 2, 6, 2],  'widths': [64, 128, 320, 512],
                                         'mlp_ratios': [8, 8, 4, 4]}),
        'b24':                          {'depths': [4, 4, 12, 4], 'widths': [64, 128, 320, 512],
                                         'mlp_ratios': [8, 8, 4, 4]},
        'b48':                          {'depths': [8, 8, 24, 8], 'widths': [64, 128, 320, 512],
                                         'mlp_ratios': [8, 8, 4, 4]},
    }
    essential_keys = {'depths', 'widths', 'mlp_ratios'}
    optional_keys = {'kernel_size': 11, 'gc_heads': 8, 'gc_reduction': 8}

    def __init__(self,
                 arch: Union[str, dict] = 'b12',
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (3,),
                 norm_cfg: Optional[dict] = None,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.0,
                 layer_scale_init_value: float = 1e-5,
                 channels_last: Optional[bool] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch_settings = self._parse_arch(arch)
        depths = self.arch_settings['depths']
        widths = self.arch_settings['widths']
        norm_cfg = dict(type='GN', num_groups=1) if norm_cfg is None else norm_cfg
        self.in_channels = in_channels
        self.out_indices = self._parse_out_indices(out_indices)
        self.frozen_stages = self._check_frozen_stages(frozen_stages)
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        mixer_cfg = dict(kernel_size=self.arch_settings['kernel_size'],
                         num_heads=self.arch_settings['gc_heads'],
                         reduction=self.arch_settings['gc_reduction'])
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stem = ConvBN(in_channels, widths[0], 7, 4)
        self.downsamples = nn.ModuleList(
            ConvBN(widths[i], widths[i + 1], 3, 2) for i in range(self.num_stages - 1))
        self.stages = nn.ModuleList()
        for i, (depth, width) in enumerate(zip(depths, widths)):
            start = sum(depths[:i])
            self.stages.append(nn.Sequential(*[
                FCViTBlock(width, self.arch_settings['mlp_ratios'][i], mixer_cfg, norm_cfg,
                           dpr[start + j], layer_scale_init_value) for j in range(depth)]))
        for i in self.out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, widths[i])[1])

        self.apply(released_init)
        self._use_channels_last(channels_last)
        self._freeze_stages()

    # ---------------------------------------------------------------- arguments
    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        settings = super()._parse_arch(arch)
        for key in self.essential_keys:
            if len(settings[key]) != self.num_stages:
                raise ValueError(f'arch[{key!r}] needs {self.num_stages} entries, '
                                 f'got {settings[key]}')
        for width in settings['widths']:
            if width % settings['gc_heads'] or width % settings['gc_reduction']:
                raise ValueError(f'every width must be divisible by gc_heads '
                                 f'({settings["gc_heads"]}) and gc_reduction '
                                 f'({settings["gc_reduction"]}); got widths {settings["widths"]}')
        return settings

    # ---------------------------------------------------------------- freezing
    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        i = self.frozen_stages  # stages[:i] and the downsamples between them
        modules = [self.stem, *self.stages[:i], *self.downsamples[:max(i - 1, 0)]]
        return modules + [getattr(self, f'norm{j}') for j in self.out_indices if j < i]

    # ---------------------------------------------------------------- forward
    def _run_stage(self, stage: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        x = group_norm_input(x)  # (after frozen stages: a torch bug, see compat)
        if not self.with_cp:
            return stage(x)  # (the stage's own forward: its hooks run)
        for block in stage:
            x = maybe_checkpoint(self.with_cp, block, x)
        return x

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            x (Tensor): images (B, in_channels, H, W), any H, W >= 1.

        Returns:
            tuple[Tensor]: (B, C_i, H_i, W_i) for each i in ``out_indices``, with
            C_i = ``widths[i]`` and H_i = ceil(H / 2^(i+2)).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'FCViT expects input (B, {self.in_channels}, H, W), '
                             f'got {tuple(x.shape)}')
        if min(x.shape[2:]) < 1:
            raise ValueError(f'FCViT needs H, W >= 1, got {tuple(x.shape[2:])}')
        x = self.stem(self._channels_last_input(x))
        outs = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = self.downsamples[i - 1](x)
            x = self._run_stage(stage, x)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x).contiguous())
        return tuple(outs)
