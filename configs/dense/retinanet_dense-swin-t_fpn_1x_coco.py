# COCO RetinaNet 1x with a DenseSwin-T backbone, following mmdet's
# swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py: stages 1-3 only (RetinaNet starts at stride 8; an
# unused stage-0 output would leave parameters without gradients), FPN from its first input with
# extra convs on the input. Optimiser as Swin's Mask R-CNN: AdamW lr 1e-4, wd 0.05 (none on
# norms and relative position tables), 1000 warm-up iterations, steps at 8 and 11, 2 x 8 GPUs.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _base_.dense_swin_tiny,
        _delete_=True,
        out_indices=(1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=_base_.dense_swin_tiny_in1k,
                      prefix='backbone.')),
    neck=dict(in_channels=[192, 384, 768], start_level=0, add_extra_convs='on_input',
              num_outs=5))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
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
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05))
auto_scale_lr = dict(enable=False, base_batch_size=16)
