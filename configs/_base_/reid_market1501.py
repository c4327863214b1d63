# Market-1501 person re-ID with mmdet's BaseReID: a backbone's last map -> global average pooling
# -> LinearReIDHead (FC 1024 -> 128-d embedding, BN1d) trained with cross-entropy on the 751
# training identities + triplet loss (margin 0.3), evaluated query-vs-gallery by
# visattn_mm.Market1501Metric (mAP, CMC rank-1/5/10; same-camera matches and junk removed).
#
# Recipe: the "bag of tricks" re-ID baseline (Luo et al. 2019) adapted to mmdet's triplet
# sampler: 256x128 crops, batches of 16 identities x 4 images, Adam(W) 3.5e-4 with a 10-epoch
# linear warm-up and x0.1 steps at epochs 40 and 70 of 120. One "epoch" of 12,936 images is
# ~200 batches of 64, so the schedule is 24k iterations with steps at 8k and 14k.
# Family configs set the backbone (its last stage only) and the head's in_channels.
#
# Data: data/market1501/{bounding_box_train,bounding_box_test,query}; write the annotation files
# once with `python tools/market1501_to_reid.py data/market1501`.
_base_ = 'mmdet::_base_/default_runtime.py'
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

data_root = 'data/market1501/'
train_pipeline = [
    dict(
        type='TransformBroadcaster',
        share_random_params=False,
        transforms=[
            dict(type='LoadImageFromFile', to_float32=True),
            dict(type='Resize', scale=(128, 256), keep_ratio=False, clip_object_border=False),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ]),
    dict(type='PackReIDInputs', meta_keys=('flip', 'flip_direction')),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='Resize', scale=(128, 256), keep_ratio=False),
    dict(type='PackReIDInputs'),  # keeps img_path: the metric reads pid/camera/side from it
]
train_dataloader = dict(
    batch_size=1,  # one item = num_ids x ins_per_id images
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='ReIDDataset',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix=dict(img_path=''),
        triplet_sampler=dict(num_ids=16, ins_per_id=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,  # BaseReID takes one packed item at a time (mmdet asserts it)
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='ReIDDataset',
        data_root=data_root,
        ann_file='meta/test.txt',
        data_prefix=dict(img_path=''),
        triplet_sampler=None,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='visattn_mm.Market1501Metric', topk=(1, 5, 10))
test_evaluator = val_evaluator

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
