# Market-1501 re-ID with a DenseDeiT-small backbone (recipe:
# configs/_base_/models/reid_market1501.py; the authors released no re-ID code). The last layer's
# patch tokens, after the final LayerNorm, form a stride-16 map (16x8 for 256x128 crops) that the
# global average pooling reads; the 14x14 position table of the ImageNet weights is interpolated
# to that grid on the fly.
_base_ = [
    '../_base_/models/reid_market1501.py',
    '../_base_/models/dense.py',
]

model = dict(
    backbone=dict(
        _base_.dense_deit_small,
        out_indices=(11, ),
        out_type='featmap',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=_base_.dense_deit_small_in1k,
                      prefix='backbone.')),
    head=dict(in_channels=384))
