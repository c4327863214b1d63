# Market-1501 person re-ID with mmdet's BaseReID: a backbone's last map -> global average pooling
# -> LinearReIDHead (FC 1024 -> 128-d embedding, BN1d) trained with cross-entropy on the 751
# training identities + triplet loss (margin 0.3), on the data of ../datasets/market1501.py.
#
# Recipe: the "bag of tricks" re-ID baseline (Luo et al. 2019) adapted to mmdet's triplet
# sampler: 256x128 crops, batches of 16 identities x 4 images, Adam(W) 3.5e-4 with a 10-epoch
# linear warm-up and x0.1 steps at epochs 40 and 70 of 120. One "epoch" of 12,936 images is
# ~200 batches of 64, so the schedule is 24k iterations with steps at 8k and 14k.
# Family configs list this file with their models file and set the backbone (its last stage only,
# `backbone={{_base_.<name>}}`) and the head's in_channels.
#
# The model and its schedule stay in this one file rather than in models/ + schedules/: the
# schedule is counted in this dataset's batches of the triplet sampler that the model's losses
# need, and its checkpoint and logger hooks override mmdet's default_runtime, so a separate
# schedule file would have to carry the runtime as well.
_base_ = [
    'mmdet::_base_/default_runtime.py',
    '../datasets/market1501.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    type='BaseReID',
    data_preprocessor=dict(
        type='ReIDDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(),  # set by the family config
    neck=dict(type='GlobalAveragePooling'),  # adaptive: any backbone stride
    head=dict(
        type='LinearReIDHead',
        num_fcs=1,
        in_channels=None,  # the backbone's last-stage channels
        fc_channels=1024,
        out_channels=128,
        num_classes=751,
        loss_cls=dict(type='mmpretrain.CrossEntropyLoss', loss_weight=1.0),
        loss_triplet=dict(type='TripletLoss', margin=0.3, loss_weight=1.0),
        norm_cfg=dict(type='BN1d'),
        act_cfg=dict(type='ReLU')))

max_iters = 24000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3.5e-4, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2000),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[8000, 14000],
         gamma=0.1),
]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=2,
                    save_best='market1501/mAP'),
    logger=dict(type='LoggerHook', interval=50))
log_processor = dict(by_epoch=False)
