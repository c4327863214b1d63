"""A simple feature pyramid for plain (single-scale) ViT backbones, after ViTDet.

Li, Mao, Girshick, He. *Exploring Plain Vision Transformer Backbones for Object Detection*,
ECCV 2022 (arXiv 2203.16527). The mmdet 3.3 wheel ships no such neck (it lives in the ViTDet
project folder of the repository only), so this is a re-implementation.

From the last stride-16 map of a plain ViT (channels C = ``backbone_channel``)::

    stride 4    deconv 2x2/2 (C -> c1), norm, GELU, deconv 2x2/2 (c1 -> c0)
    stride 8    deconv 2x2/2 (C -> c1)
    stride 16   identity     (C)
    stride 32   max-pool 2x2/2 (C)

with ``in_channels = [c0, c1, C, C]`` (ViTDet: ``[C/4, C/2, C, C]``). Each level then goes
through a 1x1 conv + norm (to ``out_channels``) and a 3x3 conv + norm; levels beyond the last
scale (``num_outs=5``: stride 64 for a Mask R-CNN RPN) are max-pools (kernel 1, stride 2) of the
level before, as in mmdet's FPN without extra convs. ``start_level=1`` leaves out the stride-4
branch (not even built), for heads that start at stride 8: RetinaNet takes ``start_level=1,
num_outs=5`` (strides 8 to 128), like mmdet's FPN ``start_level``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule
from torch import nn

from visattn_mm.registry import MODELS

# LayerNorm over the channels of an NCHW map. mmpretrain registers it as 'LN2d'; mmdet 3.3 and
# mmseg 1.2 do not, so the scoped name is what resolves from every toolbox's default scope.
DEFAULT_NORM = dict(type='mmpretrain.LN2d', eps=1e-6)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid: one stride-16 map -> strides 4, 8, 16, 32 (, 64 ...).

    Args:
        backbone_channel (int): channels C of the backbone's map.
        in_channels (Sequence[int]): channels of the four scale branches, strides 4, 8, 16, 32:
            ``[c0, c1, C, C]``. The stride-16 and stride-32 branches do not change channels,
            so their entries must be C. ViTDet uses ``[C // 4, C // 2, C, C]``.
        out_channels (int): channels of every output level.
        num_outs (int): output levels, at least ``4 - start_level``; each one past the stride-32
            level halves the previous one with a max-pool. Defaults to 4 (Mask R-CNN and
            RetinaNet: 5).
        start_level (int): the first scale built: 0 (stride 4) to 3 (stride 32). Lower scales
            are left out. Defaults to 0 (RetinaNet: 1).
        norm_cfg (dict): the norm after every conv and between the two stride-4 deconvs.
            Defaults to LayerNorm over channels (``mmpretrain.LN2d``, eps 1e-6), as ViTDet.
        conv_cfg (dict, optional): the convs' config. Defaults to None (Conv2d).
        act_cfg (dict, optional): the activation after each output conv. Defaults to None.
        init_cfg (dict | list, optional): Defaults to None (PyTorch's default for the deconvs,
            ConvModule's Kaiming init for the convs).
    """

    def __init__(self, backbone_channel: int, in_channels: Sequence[int], out_channels: int,
                 num_outs: int = 4, start_level: int = 0, norm_cfg: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None, act_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = list(in_channels)
        if len(in_channels) != 4:
            raise ValueError('SimpleFeaturePyramid builds four scales (strides 4, 8, 16, 32), '
                             f'so in_channels needs 4 entries; got {in_channels}')
        C = backbone_channel
        if in_channels[2] != C or in_channels[3] != C:
            raise ValueError(
                f'the stride-16 (identity) and stride-32 (max-pool) branches keep the backbone\'s '
                f'{C} channels, so in_channels[2:] must be [{C}, {C}]; got {in_channels}. '
                f'ViTDet uses in_channels=[{C // 4}, {C // 2}, {C}, {C}]')
        if min(in_channels) < 1 or C < 1 or out_channels < 1:
            raise ValueError('channels must be positive: backbone_channel '
                             f'{C}, in_channels {in_channels}, out_channels {out_channels}')
        if not 0 <= start_level <= 3:
            raise ValueError('start_level must be 0 (stride 4) to 3 (stride 32); '
                             f'got {start_level}')
        if num_outs < 4 - start_level:
            raise ValueError(f'num_outs must be at least {4 - start_level} (the scales from '
                             f'start_level {start_level} to stride 32); got {num_outs}')
        self.backbone_channel = C
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.start_level = start_level
        self.num_ins = 4 - start_level
        self.num_outs = num_outs
        norm_cfg = dict(norm_cfg) if norm_cfg is not None else dict(DEFAULT_NORM)
        c0, c1 = in_channels[0], in_channels[1]

        levels = range(start_level, 4)
        # entry j of each list is scale level start_level + j
        self.scale_layers = nn.ModuleList(
            self._scale_layer(i, C, c0, c1, norm_cfg) for i in levels)
        conv_kwargs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False)
        self.lateral_convs = nn.ModuleList(
            ConvModule(in_channels[i], out_channels, 1, **conv_kwargs) for i in levels)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, **conv_kwargs) for _ in levels)

    @staticmethod
    def _scale_layer(level: int, C: int, c0: int, c1: int, norm_cfg: dict) -> nn.Module:
        """The branch that takes the stride-16 map to scale ``level`` (stride 2 ** (level + 2))."""
        if level == 0:
            return nn.Sequential(
                nn.ConvTranspose2d(C, c1, kernel_size=2, stride=2),
                build_norm_layer(norm_cfg, c1)[1],
                nn.GELU(),
                nn.ConvTranspose2d(c1, c0, kernel_size=2, stride=2))
        if level == 1:
            return nn.ConvTranspose2d(C, c1, kernel_size=2, stride=2)
        if level == 2:
            return nn.Identity()
        return nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, inputs: Union[torch.Tensor, Sequence[torch.Tensor]]
                ) -> Tuple[torch.Tensor, ...]:
        """
        Args:
            inputs (Tensor | Sequence[Tensor]): the backbone's stride-16 map (B, C, h, w), or
                the backbone's tuple of maps (its last one is used).

        Returns:
            tuple: ``num_outs`` maps (B, out_channels, ...) at strides 4, 8, 16, 32, 64, ...
            from ``start_level`` on (sides 4h, 2h, h, floor(h / 2), then halved rounding up).
        """
        x = inputs if isinstance(inputs, torch.Tensor) else inputs[-1]
        if x.dim() != 4 or x.shape[1] != self.backbone_channel:
            raise ValueError(
                f'{type(self).__name__} expects a (B, {self.backbone_channel}, h, w) map '
                f'(backbone_channel={self.backbone_channel}); got shape {tuple(x.shape)}. Set '
                "the backbone's out_type='featmap' and backbone_channel to its embed_dims")
        outs = [fpn(lateral(scale(x))) for scale, lateral, fpn in
                zip(self.scale_layers, self.lateral_convs, self.fpn_convs)]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
