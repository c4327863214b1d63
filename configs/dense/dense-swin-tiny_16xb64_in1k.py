# Swin-T with dense attention on ImageNet-1k with Swin's recipe, as mmpretrain's
# swin-tiny_16xb64_in1k.py: AdamW lr 1e-3 at 1024 images, wd 0.05 (none on norms, biases, 1-D
# parameters and relative position tables), 20 warm-up epochs, cosine to 1e-5 over 300 epochs,
# gradient clipping 5.0, drop path 0.2, RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, random erasing 0.25; test: resize 256, centre crop 224.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(_base_.dense_swin_tiny, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        init_cfg=None,  # the model's init_cfg below covers the head
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
    ],
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]),
)

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
