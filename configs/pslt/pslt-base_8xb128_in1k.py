# PSLT (embed 36, the paper's 9.2M model) on ImageNet-1k, with the authors' released recipe
# (classification/main.py of github.com/lazyGj/PSLT: DeiT-style training, 8 GPUs x 128 images).
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',  # RandAug m9 mstd0.5, erase 0.25,
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',  # bicubic, 256 -> crop 224
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/gap-linear-cls_in1k.py',  # GAP, label smoothing, Mixup/CutMix
    '../_base_/models/pslt.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

# model settings: the released head's LayerNorm(16 C0) on the tokens, then pooling and Linear
model = dict(
    backbone={{_base_.pslt_base}},  # configs/_base_/models/pslt.py
    head=dict(in_channels=576))

# data settings: 128 per GPU, repeated augmentation (3 repeats) as released
train_dataloader = dict(
    batch_size=128,
    sampler=dict(type='RepeatAugSampler', shuffle=True),
)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

# schedule settings: lr 5e-4 x total batch / 512, weight decay 0.025, no gradient clipping.
# As in timm's optimizer factory, 1-D parameters (norms, biases) are not decayed and, unlike
# Swin, the relative position bias tables are (PSLT lists no no-decay keywords of its own).
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 512, weight_decay=0.025, eps=1e-8,
                   betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        _delete_=True, norm_decay_mult=0.0, bias_decay_mult=0.0, flat_decay_mult=0.0),
)
param_scheduler = [
    # 5 warm-up epochs from 1e-6 (= 1e-3 x lr)
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5,
         convert_to_iter_based=True),
    # cosine down to 1e-6
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
auto_scale_lr = dict(base_batch_size=1024)

# model EMA, decay 0.99996 (mmengine's momentum = 1 - decay)
custom_hooks = [dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL')]
