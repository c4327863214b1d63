# CIFAR-10 fine-tuning of DenseDeiT-small from its ImageNet-1k weights (the paper reports 98.9
# top-1 "transfer"). The authors released no fine-tuning recipe; this one is the standard ViT
# transfer protocol (Dosovitskiy et al. 2021): images upsampled to 224, SGD momentum 0.9, batch
# 512 (8 GPUs x 64), 10k iterations with 500 warm-up iterations and cosine decay, no weight decay,
# gradient clipping at norm 1.0, a new zero-initialised linear head on the cls token.
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

num_classes = 10
model = dict(
    type='ImageClassifier',
    backbone=dict(
        _base_.dense_deit_small,
        init_cfg=dict(type='Pretrained', checkpoint=_base_.dense_deit_small_in1k,
                      prefix='backbone.')),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=384,
        init_cfg=dict(type='Constant', layer='Linear', val=0., bias=0.),
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)

# ImageNet normalisation (the weights were trained with it); CIFAR images load as RGB
data_preprocessor = dict(
    num_classes=num_classes,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=(224, 224), interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=64, num_workers=4, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

max_iters = 10000
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', eta_min=0., by_epoch=False, begin=500, end=max_iters),
]
train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=1000)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000,
                                     max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=512)
