# COCO Mask R-CNN 1x with FCViT-B24, the authors' released recipe. Released: box 44.1, mask 39.9.
_base_ = './mask-rcnn_fcvit-b12_fpn_1x_coco.py'

pretrained = 'pretrained/fcvit-b24_in1k.pth'
model = dict(
    backbone=dict(
        arch='b24',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')))
