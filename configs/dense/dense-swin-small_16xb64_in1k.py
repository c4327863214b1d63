# Swin-S with dense attention on ImageNet-1k: the recipe of dense-swin-tiny_16xb64_in1k.py
# (Swin's), drop path 0.3.
_base_ = './dense-swin-tiny_16xb64_in1k.py'

model = dict(backbone=dict(_base_.dense_swin_small, out_indices=(3, )))
