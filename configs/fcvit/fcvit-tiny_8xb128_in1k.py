# FCViT-tiny on ImageNet-1k with the authors' recipe (github.com/ma-xu/FCViT: train.py defaults and
# README command `-b 128 --lr 1e-3 --drop-path 0.1` on 8 GPUs), expressed with mmpretrain pieces:
# AdamW lr 1e-3 at total batch 1024, wd 0.05 (none on 1-D parameters), 5 warm-up epochs from 1e-6,
# cosine to 1e-6 at epoch 300, then timm's 10 cool-down epochs at 1e-6; RandAugment m9 mstd0.5,
# Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing 0.25, bicubic; no EMA; test crop 0.9.
_base_ = [
    # timm-style train aug (RandAugment m9-mstd0.5-inc, random erasing 0.25 per pixel, bicubic),
    # test resize 248 = floor(224 / 0.9) + centre crop 224, batch 128 per GPU
    'mmpretrain::_base_/datasets/imagenet_bs128_poolformer_small_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/gap-linear-cls_in1k.py',  # GAP, label smoothing, Mixup/CutMix
    '../_base_/models/fcvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    # out_indices=(3,): norm3 is the released head's GroupNorm(1, C), applied before pooling
    backbone={{_base_.fcvit_tiny}},  # configs/_base_/models/fcvit.py
    head=dict(in_channels=320))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    # timm skips weight decay on every 1-D parameter (biases, norms, layer scales, GC affines)
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0, bias_decay_mult=0.0,
                       flat_decay_mult=0.0),
)
param_scheduler = [
    # warm-up from warmup_lr 1e-6 = 1e-3 * lr
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5, end=300),
    # epochs 300-310 keep the last value, 1e-6: timm's --cooldown-epochs 10
]
train_cfg = dict(by_epoch=True, max_epochs=310, val_interval=1)
# the README's rule lr = total_batch / 1024 * 1e-3; enable with `--auto-scale-lr`
auto_scale_lr = dict(base_batch_size=1024)
