# DeiT-tiny with dense attention (2 heads, as released) on ImageNet-1k, with the authors' recipe
# (koala719/Dense-ViT train_hp.py, timm 0.3.2; the same script as BViT's): DeiT-style training at
# 4 GPUs x 256 images, with the release's changes to DeiT: base lr 1e-3 per 512 images (not 5e-4),
# AdamW eps 1e-6, gradient clipping at norm 1.0, no drop path.
_base_ = [
    # RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25 per pixel, bicubic; test: resize
    # the short side to 256, centre crop 224
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

# model settings: the backbone's cls token after its final LayerNorm -> Linear (the released
# head, LayerNorm + Linear, split between backbone.ln1 and head.fc)
model = dict(
    type='ImageClassifier',
    backbone=_base_.dense_deit_tiny,
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=192,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),  # accuracy means nothing on mixed labels
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),  # timm: mixup 0.8 / cutmix 1.0, switch prob 0.5
        dict(type='CutMix', alpha=1.0),
    ]),
)

# data settings: 256 per GPU x 4 GPUs, repeated augmentation (3 repeats, as DeiT)
train_dataloader = dict(
    batch_size=256,
    sampler=dict(type='RepeatAugSampler', shuffle=True),
)
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader

# schedule settings: lr = 1e-3 x total batch / 512 = 2e-3 at 1024 images
lr = 1e-3 * 1024 / 512
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05, eps=1e-6, betas=(0.9, 0.999)),
    # timm: no weight decay on 1-D parameters (norms, biases, dense attention's mixing
    # weights) nor on the cls token and position table
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        flat_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    # 5 warm-up epochs from 1e-6 (timm's warmup_lr)
    dict(type='LinearLR', start_factor=1e-6 / lr, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # cosine down to min lr 1e-5 at epoch 300
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
# the release's rule lr = 1e-3 x total batch / 512; enable with `--auto-scale-lr`
auto_scale_lr = dict(base_batch_size=1024)
