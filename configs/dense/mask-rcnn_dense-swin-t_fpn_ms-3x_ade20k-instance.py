# ADE20K instance segmentation (mmdet's 100 thing classes) with Mask R-CNN and a DenseSwin-T
# backbone. No recipe: Swin's COCO Mask R-CNN optimiser (AdamW lr 1e-4, wd 0.05, none on norms,
# relative position tables and dense attention's mixing weights, 1000 warm-up iterations) over
# 36 epochs with steps at 27 and 33, at ADE20K's scale (shorter side 512..640, test 2560x640; see
# ../_base_/datasets/ade20k_instance.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/ade20k_instance.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/schedules/swin-adamw_3x_ade20k-instance.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone=_base_.dense_swin_tiny_dense,  # configs/_base_/models/dense.py
    neck=dict(in_channels=[96, 192, 384, 768]),
    roi_head=dict(bbox_head=dict(num_classes=100), mask_head=dict(num_classes=100)))
