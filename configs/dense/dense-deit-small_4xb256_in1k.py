# DeiT-small with dense attention (6 heads, as released) on ImageNet-1k: the recipe of
# dense-deit-tiny_4xb256_in1k.py (the authors use one script for both sizes).
_base_ = './dense-deit-tiny_4xb256_in1k.py'

model = dict(backbone=_base_.dense_deit_small, head=dict(in_channels=384))
