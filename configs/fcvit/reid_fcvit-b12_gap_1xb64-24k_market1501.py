# Market-1501 re-ID with an FCViT-B12 backbone (recipe: configs/_base_/reid_market1501.py; the
# authors released no re-ID code). The last stage's output norm (GroupNorm) feeds the pooling.
_base_ = '../_base_/reid_market1501.py'

pretrained = 'pretrained/fcvit-b12_in1k.pth'  # tools/convert_official.py fcvit ...
model = dict(
    backbone=dict(
        type='visattn_mm.FCViT',
        arch='b12',
        out_indices=(3, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=512))
