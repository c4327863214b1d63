# BViT-22M (BViT-small) on ImageNet-1k: the BViT-tiny recipe (the authors' released one) with the
# DeiT-S-sized model. The released BViT_S crashes (its broad output is pooled to a hard-coded 192
# channels); here the broad output is pooled to C = 384. Paper: 81.6 top-1.
_base_ = ['./bvit-tiny_4xb256_in1k.py']

model = dict(backbone={{_base_.bvit_small}}, head=dict(in_channels=384))
