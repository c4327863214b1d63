# ADE20K UperNet with FCViT-B24, 160k iterations at 512x512. The authors released only Semantic
# FPN; this uses mmseg's UperNet recipe for hierarchical transformers (Swin/ConvNeXt): AdamW
# 6e-5, wd 0.01, 1500 linear warm-up iterations, poly (power 1.0), batch 2 x 8 GPUs, auxiliary
# FCN head on stage 3.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/models/fcvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone={{_base_.fcvit_b24_seg}},  # configs/_base_/models/fcvit.py
    decode_head=dict(in_channels=[64, 128, 320, 512], num_classes=150),
    auxiliary_head=dict(in_channels=320, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=160000, eta_min=0.0, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
