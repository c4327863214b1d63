# BViT-22M fine-tuned on CIFAR-10 from its ImageNet-1k weights (paper: 98.9 top-1; CIFAR-100: 89.9).
# The authors released no transfer recipe; this one is ours, in the DeiT/timm transfer style the
# ImageNet recipe comes from: 32x32 images upsampled to 224 (bicubic) so the position table and
# patch grid stay those of pre-training, the ImageNet augmentations (random resized crop,
# RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing 0.25),
# AdamW lr 1e-4 at batch 512 (8 x 64), weight decay 0.05, eps 1e-6, clipping at 1.0, 100 epochs
# cosine to 1e-6 after 5 warm-up epochs, drop path 0.1, ImageNet's normalisation (the images come
# as RGB). Data: mmpretrain's CIFAR10 dataset (data/cifar10/cifar-10-batches-py, downloaded on
# first use).
_base_ = ['./bvit-small_4xb256_in1k.py']

model = dict(
    # Pretrained from bvit_small_in1k, set in configs/_base_/models/bvit.py
    backbone={{_base_.bvit_small_finetune}},
    head=dict(num_classes=10))

data_preprocessor = dict(
    num_classes=10,
    mean=[123.675, 116.28, 103.53],  # ImageNet's, in RGB order, as in pre-training
    std=[58.395, 57.12, 57.375],
    to_rgb=False)  # mmpretrain's CIFAR images are RGB already
rgb_mean = [124, 116, 104]  # fills for RandAugment and erasing
train_pipeline = [
    dict(type='RandomResizedCrop', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=rgb_mean, interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=rgb_mean, fill_std=[58.395, 57.12, 57.375]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='Resize', scale=224, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_delete_=True, type='CIFAR10', data_root='data/cifar10', split='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(_delete_=True, type='CIFAR10', data_root='data/cifar10', split='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5, end=100),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=5)
auto_scale_lr = dict(base_batch_size=512)
