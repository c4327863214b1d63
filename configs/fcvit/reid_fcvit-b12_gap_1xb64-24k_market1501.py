# Market-1501 re-ID with an FCViT-B12 backbone (recipe: configs/_base_/models/reid_market1501.py;
# the authors released no re-ID code). The last stage's output norm (GroupNorm) feeds the pooling.
_base_ = ['../_base_/models/reid_market1501.py', '../_base_/models/fcvit.py']

model = dict(
    backbone={{_base_.fcvit_b12_reid}},  # configs/_base_/models/fcvit.py
    head=dict(in_channels=512))
