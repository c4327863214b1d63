# Market-1501 re-ID with a PSLT-base backbone (the abstract reports re-ID experiments; the
# authors released no re-ID code, so the recipe is configs/_base_/reid_market1501.py).
_base_ = '../_base_/reid_market1501.py'

pretrained = 'pretrained/pslt-base_in1k.pth'  # tools/convert_official.py pslt ...
model = dict(
    backbone=dict(
        type='visattn_mm.PSLT',
        arch='base',
        out_indices=(3, ),
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(in_channels=576))
