# ADE20K Semantic FPN with FCViT-B24, the authors' released recipe (fpn_fcvit_b24_ade20k_40k.py).
# Released mIoU: 45.5.
_base_ = './fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py'

pretrained = 'pretrained/fcvit-b24_in1k.pth'
model = dict(
    backbone=dict(
        arch='b24',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
