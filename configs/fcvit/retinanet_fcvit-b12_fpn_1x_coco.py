# COCO RetinaNet 1x with FCViT-B12. Not released by the authors: their Mask R-CNN optimiser
# (AdamW 2e-4, wd 1e-4, 12 epochs, steps 8/11) on mmdet's RetinaNet 1x, 2 images x 8 GPUs.
# RetinaNet starts at stride 8, so the backbone emits stages 1-3 only (an unused stage-0 output
# norm would get no gradient and stall distributed training; the authors' FORK_LAST3 switch).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/fcvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.fcvit_b12_dense_s8}},  # configs/_base_/models/fcvit.py
    neck=dict(in_channels=[128, 320, 512], start_level=0, add_extra_convs='on_input',
              num_outs=5))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=16)
