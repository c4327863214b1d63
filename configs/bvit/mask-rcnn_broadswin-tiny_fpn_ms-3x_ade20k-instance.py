# ADE20K instance segmentation (100 thing classes) with Mask R-CNN and Swin-T + broad attention.
# No recipe was released; the optimiser is mmdet's Swin-T Mask R-CNN one (AdamW 1e-4, weight
# decay 0.05, none on norms and position tables, 1000 warm-up iterations), trained 36 epochs with
# steps at 27 and 33 (mmdet's Swin 3x) on ADE20K's 20k training images at ADE20K's scale (shorter
# side 512..640, test 2560x640), 2 images x 8 GPUs.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/ade20k_instance.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/schedules/swin-adamw_3x_ade20k-instance.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.broadswin_tiny_dense}},  # configs/_base_/models/bvit.py
    neck=dict(in_channels=[96, 192, 384, 768]),
    roi_head=dict(bbox_head=dict(num_classes=100), mask_head=dict(num_classes=100)))
