# FCViT-B48 on ImageNet-1k: the recipe of fcvit-tiny, drop path 0.2, test crop_pct 0.95.
_base_ = './fcvit-b24_8xb128_in1k.py'

model = dict(backbone=dict(arch='b48', drop_path_rate=0.2))
