# FCViT-B12 (the paper's "S12") on ImageNet-1k: the recipe of fcvit-tiny, drop path 0.1, crop 0.9.
_base_ = './fcvit-tiny_8xb128_in1k.py'

model = dict(backbone=dict(arch='b12', drop_path_rate=0.1), head=dict(in_channels=512))
