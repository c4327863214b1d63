# COCO RetinaNet 1x with BViT-22M (BViT-small) and a simple feature pyramid. RetinaNet's levels
# are strides 8-128, so the pyramid starts at stride 8 (start_level=1: no stride-4 branch) and
# adds max-pooled strides 64 and 128. Optimiser and schedule as the BViT Mask R-CNN 1x config
# (mmdet's Swin-T recipe: AdamW 1e-4, weight decay 0.05, 12 epochs, steps 8 and 11).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    '../_base_/schedules/vit-adamw_1x_coco.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.bvit_small_dense}},  # configs/_base_/models/bvit.py
    neck=dict(_base_.bvit_small_sfp, start_level=1))  # strides 8, 16, 32 + 64, 128
