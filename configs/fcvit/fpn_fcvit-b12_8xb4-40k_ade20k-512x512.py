# ADE20K Semantic FPN with FCViT-B12 (paper: S12), the authors' released recipe
# (segmentation/configs/sem_fpn/fpn_fcvit_b12_ade20k_40k.py): AdamW 2e-4, wd 1e-4, poly, 40k
# iterations at 4 x 8 GPUs, 512x512 crops. Released mIoU: 43.3.
_base_ = ['../_base_/models/sem-fpn_ade20k-512x512_40k.py', '../_base_/models/fcvit.py']

model = dict(
    backbone={{_base_.fcvit_b12_dense}},  # configs/_base_/models/fcvit.py
    neck=dict(in_channels=[64, 128, 320, 512]))
