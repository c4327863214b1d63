# ADE20K semantic segmentation with Semantic FPN and PSLT-base, 512x512, 40k iterations.
# The authors released no segmentation recipe. We use Semantic FPN (not UperNet) because PSLT is a
# 9M-parameter mobile-class backbone and Semantic FPN is the light head its peers report on
# ADE20K (PVT, PoolFormer, FCViT); the 40k x batch-32 AdamW 2e-4 schedule is theirs too
# (equal in images seen to PVT's 80k x 16), which keeps the numbers comparable with FCViT here.
_base_ = ['../_base_/models/sem-fpn_ade20k-512x512_40k.py', '../_base_/models/pslt.py']

model = dict(
    backbone={{_base_.pslt_base_dense}},  # configs/_base_/models/pslt.py
    neck=dict(in_channels=[72, 144, 288, 576]))
