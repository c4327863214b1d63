# Market-1501 person re-ID for mmdet's BaseReID: 256x128 crops (flipped for training), batches of
# 16 identities x 4 images drawn by the triplet sampler (one packed item per loader batch),
# evaluated query-vs-gallery by visattn_mm.Market1501Metric (mAP, CMC rank-1/5/10; same-camera
# matches and junk removed), which needs `custom_imports` of visattn_mm in the config using this.
#
# Data: data/market1501/{bounding_box_train,bounding_box_test,query}; write the annotation files
# once with `python tools/dataset_converters/market1501_to_reid.py data/market1501`.
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
