"""Small archs of every backbone family, each with every mechanism of the family in its graph,
for the tests that run all families (mixed precision, compilation)."""
from typing import Callable, Dict, Tuple

import torch

from visattn_mm.models.backbones import (BroadSwinTransformer, BroadT2TViT, BViT, DenseDeiT,
                                         DenseSwinTransformer, FCViT, PSLT)

VIT = dict(embed_dims=48, num_layers=4, num_heads=3, head_dims=16, feedforward_channels=96)
SWIN = dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4])
# name -> (builder, input (H, W)); small archs, every mechanism of the family in the graph
CASES: Dict[str, Tuple[Callable[[], torch.nn.Module], Tuple[int, int]]] = {
    'PSLT': (lambda **kw: PSLT(**kw, arch=dict(embed_dims=12, depths=(2, 2, 2, 2), num_heads=(2, 2),
                                    window_size=4), out_indices=(0, 1, 2, 3),
                          drop_path_rate=0.), (160, 128)),
    # layer scale 1: the blocks (global context, large-kernel convs) weigh in the outputs
    'FCViT': (lambda **kw: FCViT(**kw, arch=dict(depths=[1, 1, 2, 1], widths=[16, 32, 48, 64],
                                      mlp_ratios=[4, 4, 4, 4]), out_indices=(0, 1, 2, 3),
                            layer_scale_init_value=1.), (96, 80)),
    'BViT': (lambda **kw: BViT(**kw, arch=VIT, img_size=64, out_type='featmap', out_indices=(1, 3)),
             (96, 80)),
    'DenseDeiT': (lambda **kw: DenseDeiT(**kw, arch=VIT, img_size=64, out_type='featmap',
                                    out_indices=(1, 3)), (96, 80)),
    'BroadSwinTransformer': (lambda **kw: BroadSwinTransformer(**kw, arch=SWIN, window_size=4,
                                                          drop_path_rate=0.,
                                                          out_indices=(0, 1, 2, 3)), (100, 76)),
    'DenseSwinTransformer': (lambda **kw: DenseSwinTransformer(**kw, arch=SWIN, window_size=4,
                                                          drop_path_rate=0.,
                                                          out_indices=(0, 1, 2, 3)), (100, 76)),
    'BroadT2TViT': (lambda **kw: BroadT2TViT(**kw, embed_dims=48, num_layers=3,
                                        layer_cfgs=dict(num_heads=2), t2t_cfg=dict(token_dims=8),
                                        img_size=64, out_type='featmap', out_indices=(1, 2)),
                    (96, 80)),
}


def build(name: str, **kwargs) -> torch.nn.Module:
    """A fresh, seeded ``CASES[name]`` backbone; ``kwargs`` go to its constructor."""
    torch.manual_seed(0)
    return CASES[name][0](**kwargs)
