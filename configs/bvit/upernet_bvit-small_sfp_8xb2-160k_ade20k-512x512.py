# ADE20K semantic segmentation with UperNet and BViT-22M (BViT-small), 512x512, 160k iterations.
# The stride-16 map of the last layer goes through a simple feature pyramid (strides 4-32, C =
# 384 channels each, the role mmseg's MultiLevelNeck plays for its ViT UperNets) into UperNet;
# the auxiliary FCN head reads the stride-16 level. No recipe was released; this is mmseg's
# DeiT-S UperNet (vit_deit-s16_upernet_8xb2-160k): AdamW 6e-5, weight decay 0.01 (none on norms,
# position table, cls token), 1500 linear warm-up iterations, poly (power 1) to 0, drop path 0.1,
# 2 images x 8 GPUs.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone={{_base_.bvit_small_dense}},  # configs/_base_/models/bvit.py
    neck=dict(
        type='visattn_mm.SimpleFeaturePyramid',
        backbone_channel=384,
        in_channels=[96, 192, 384, 384],
        out_channels=384,
        num_outs=4),
    decode_head=dict(in_channels=[384, 384, 384, 384], num_classes=150),
    auxiliary_head=dict(in_channels=384, in_index=2, num_classes=150))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=160000, eta_min=0.0, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
val_dataloader = dict(batch_size=1)
test_dataloader = val_dataloader
