# COCO RetinaNet 1x with BViT-22M (BViT-small) and a simple feature pyramid. RetinaNet's levels
# are strides 8-128, so the pyramid starts at stride 8 (start_level=1: no stride-4 branch) and
# adds max-pooled strides 64 and 128. Optimiser and schedule as the BViT Mask R-CNN 1x config
# (mmdet's Swin-T recipe: AdamW 1e-4, weight decay 0.05, 12 epochs, steps 8 and 11).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.bvit_small_dense}},  # configs/_base_/models/bvit.py
    neck=dict(
        _delete_=True,
        type='visattn_mm.SimpleFeaturePyramid',
        backbone_channel=384,
        in_channels=[96, 192, 384, 384],
        out_channels=256,
        start_level=1,  # strides 8, 16, 32 ...
        num_outs=5))  # ... 64, 128

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
