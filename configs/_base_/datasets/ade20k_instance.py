# ADE20K instance segmentation (mmdet's ADE20KInstanceDataset, its 100 thing classes) with the
# training half that mmdet's own _base_ lacks. Layout (ADEChallengeData2016 + the converted
# instance annotations, see mmdet's tools/dataset_converters/ade20k2coco.py):
#   data/ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
#   data/ADEChallengeData2016/ade20k_instance_{train,val}.json
_base_ = 'mmdet::_base_/datasets/ade20k_instance.py'

data_root = 'data/ADEChallengeData2016/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(2560, 512), (2560, 640)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type='ADE20KInstanceDataset',
        data_root=data_root,
        ann_file='ade20k_instance_train.json',
        data_prefix=dict(img='images/training'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'ade20k_instance_val.json')
test_evaluator = val_evaluator
