# COCO Mask R-CNN 1x with FCViT-B24, the authors' released recipe. Released: box 44.1, mask 39.9.
_base_ = './mask-rcnn_fcvit-b12_fpn_1x_coco.py'

model = dict(backbone={{_base_.fcvit_b24_dense}})  # configs/_base_/models/fcvit.py
