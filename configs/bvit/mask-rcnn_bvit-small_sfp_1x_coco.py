# COCO Mask R-CNN 1x with BViT-22M (BViT-small) and a ViTDet-style simple feature pyramid.
# BViT is a plain ViT: its last layer (after broad attention and the final LayerNorm) gives one
# stride-16 map, from which visattn_mm.SimpleFeaturePyramid builds strides 4-32 (+ a max-pooled
# stride 64 for the RPN). The authors released no detection recipe; this is mmdet's Swin-T
# Mask R-CNN 1x schedule for transformer backbones (AdamW 1e-4, weight decay 0.05, none on norms,
# biases, position table and cls token, 1000 warm-up iterations, 12 epochs with steps at 8 and 11,
# 1333x800, flip, 2 images x 8 GPUs) with the stochastic depth (0.1) of ViT detectors.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    # stride-16 map of 384 channels, Pretrained from bvit_small_in1k (configs/_base_/models/bvit.py)
    backbone={{_base_.bvit_small_dense}},
    neck=dict(
        _delete_=True,
        type='visattn_mm.SimpleFeaturePyramid',
        backbone_channel=384,
        in_channels=[96, 192, 384, 384],  # strides 4, 8, 16, 32 (ViTDet: C/4, C/2, C, C)
        out_channels=256,
        num_outs=5))  # + stride 64 for the RPN, as the ResNet FPN

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.0),
            'cls_token': dict(decay_mult=0.0)
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
