# An ImageNet-1k classifier around a family backbone, as the PSLT and FCViT recipes (timm / DeiT
# style) train it: the backbone's last map -> global average pooling -> LinearClsHead (1000
# classes, truncated-normal init) with label smoothing 0.1, on Mixup 0.8 / CutMix 1.0 batches.
# The family config adds the backbone (`backbone={{_base_.<name>}}` from its models file) and sets
# `head=dict(in_channels=...)`, the backbone's last-stage channels.
model = dict(
    type='ImageClassifier',
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=None,
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        cal_acc=False),  # accuracy means nothing on mixed labels
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
