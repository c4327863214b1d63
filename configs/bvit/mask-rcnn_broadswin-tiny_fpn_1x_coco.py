# COCO Mask R-CNN 1x with Swin-T + broad attention. No recipe was released for it; this is
# mmdet's Swin-T Mask R-CNN 1x (mask-rcnn_swin-t-p4-w7_fpn_1x_coco): AdamW 1e-4, weight decay
# 0.05 (none on norms and position tables), 1000 warm-up iterations, 12 epochs with steps at 8
# and 11, 1333x800, flip, 2 images x 8 GPUs, drop path 0.2. mmdet's Swin-T: box 42.7 / mask 39.3.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    # four stages, Pretrained from broadswin_tiny_in1k (configs/_base_/models/bvit.py)
    backbone={{_base_.broadswin_tiny_dense}},
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
