# ADE20K instance segmentation (100 thing classes) with Mask R-CNN and FCViT-B12: the authors'
# COCO Mask R-CNN 1x optimiser (AdamW 2e-4, wd 1e-4, steps 8/11 over 12 epochs) on ADE20K at
# ADE20K's scale (shorter side 512..640, test 2560x640). Not released by the authors.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/ade20k_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/fcvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.fcvit_b12_dense}},  # configs/_base_/models/fcvit.py
    neck=dict(in_channels=[64, 128, 320, 512]),
    roi_head=dict(bbox_head=dict(num_classes=100), mask_head=dict(num_classes=100)))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=16)
