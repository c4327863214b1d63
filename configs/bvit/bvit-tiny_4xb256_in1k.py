# BViT-5M (BViT-tiny) on ImageNet-1k with the authors' released recipe (github.com/koala719/BViT,
# train_hp.py defaults and the README's 4 GPUs x 256 images). BViT is DeiT-Ti plus broad
# attention and its recipe is DeiT's, so this starts from mmpretrain's DeiT-tiny config (AdamW,
# weight decay 0.05, RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0 picked per batch like timm's
# switch probability 0.5, label smoothing 0.1, random erasing 0.25 per pixel, bicubic, test
# resize 256 -> centre crop 224) and applies the released changes: lr 1e-3 x total batch / 512
# (2e-3 at 1024), eps 1e-6, gradient clipping at norm 1.0, cosine to a minimum of 1e-5 after 5
# warm-up epochs from 1e-6, no stochastic depth, repeated augmentation, mixed precision.
# The released EMA has decay 0 (a no-op), so there is none. Paper: 74.8 (v1) / 75.0 (TNNLS) top-1.
_base_ = [
    'mmpretrain::deit/deit-tiny_4xb256_in1k.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.bvit_tiny}},  # the normalised cls token (the released head's LayerNorm)
    head=dict(
        _delete_=True,
        type='LinearClsHead',  # the released head's Linear (converted to head.fc)
        num_classes=1000,
        in_channels=192,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),  # accuracy means nothing on mixed labels
)

# data: 256 images per GPU x 4 GPUs, repeated augmentation (3 repeats, as DeiT / timm)
train_dataloader = dict(batch_size=256, sampler=dict(type='RepeatAugSampler', shuffle=True))
val_dataloader = dict(batch_size=256)
test_dataloader = val_dataloader

optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-3 * 1024 / 512, weight_decay=0.05, eps=1e-6,
                   betas=(0.9, 0.999)),
    # timm's create_optimizer skips weight decay on 1-D parameters (norms, biases) only: the
    # released model has no no_weight_decay(), so its cls token and position table are decayed
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0, bias_decay_mult=0.0,
                       flat_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0),
)
param_scheduler = [
    # 5 warm-up epochs from 1e-6 (= lr x 5e-4)
    dict(type='LinearLR', start_factor=1e-6 / 2e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    # cosine down to the minimum lr 1e-5
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
# the released rule lr = 1e-3 x total batch / 512: `--auto-scale-lr` rescales from 1024
auto_scale_lr = dict(base_batch_size=1024)
