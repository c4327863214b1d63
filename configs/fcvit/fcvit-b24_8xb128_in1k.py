# FCViT-B24 on ImageNet-1k: the recipe of fcvit-tiny, drop path 0.1, test crop_pct 0.95.
_base_ = './fcvit-b12_8xb128_in1k.py'

model = dict(backbone=dict(arch='b24', drop_path_rate=0.1))

# crop_pct 0.95: resize the short edge to floor(224 / 0.95) = 235 as timm does, centre crop 224
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=235, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
