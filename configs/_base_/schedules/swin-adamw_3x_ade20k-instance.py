# ADE20K instance segmentation schedule for Swin-style backbones (no recipe was released for
# any of them): mmdet's Swin-T Mask R-CNN optimiser (swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py:
# AdamW 1e-4, weight decay 0.05, none on norms and position tables, 1000 warm-up iterations)
# over mmdet's Swin 3x length, 36 epochs with steps at 27 and 33, validating every 4 epochs.
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
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'mix_weight': dict(decay_mult=0.),  # dense attention's 1-D mixing weights
            'norm': dict(decay_mult=0.)
        }))
auto_scale_lr = dict(enable=False, base_batch_size=16)
