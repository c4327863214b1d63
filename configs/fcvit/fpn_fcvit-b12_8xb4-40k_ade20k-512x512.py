# ADE20K Semantic FPN with FCViT-B12 (paper: S12), the authors' released recipe
# (segmentation/configs/sem_fpn/fpn_fcvit_b12_ade20k_40k.py): AdamW 2e-4, wd 1e-4, poly, 40k
# iterations at 4 x 8 GPUs, 512x512 crops. Released mIoU: 43.3.
_base_ = '../_base_/sem-fpn_ade20k-512x512_40k.py'

pretrained = 'pretrained/fcvit-b12_in1k.pth'  # tools/convert_official.py fcvit ...
model = dict(
    backbone=dict(
        _delete_=True,
        type='visattn_mm.FCViT',
        arch='b12',
        out_indices=(0, 1, 2, 3),
        layer_scale_init_value=1e-6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512]))
