# ADE20K instance segmentation (mmdet's 100 thing classes) with Mask R-CNN and a DenseSwin-T
# backbone. No released recipe: Swin's COCO Mask R-CNN optimiser (AdamW lr 1e-4, wd 0.05, none on
# norms and relative position tables, 1000 warm-up iterations) over 36 epochs with steps at 27
# and 33, at ADE20K's scale (shorter side 512..640, test 2560x640; see
# ../_base_/datasets/ade20k_instance.py).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/ade20k_instance.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _base_.dense_swin_tiny,
        _delete_=True,
        out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=_base_.dense_swin_tiny_in1k,
                      prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]),
    roi_head=dict(bbox_head=dict(num_classes=100), mask_head=dict(num_classes=100)))

max_epochs = 36
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'mix_weight': dict(decay_mult=0.),  # dense attention's 1-D mixing weights
            'norm': dict(decay_mult=0.)
        }),
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05))
auto_scale_lr = dict(enable=False, base_batch_size=16)
