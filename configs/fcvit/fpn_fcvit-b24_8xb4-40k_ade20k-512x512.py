# ADE20K Semantic FPN with FCViT-B24, the authors' released recipe (fpn_fcvit_b24_ade20k_40k.py).
# Released mIoU: 45.5.
_base_ = './fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py'

model = dict(backbone={{_base_.fcvit_b24_dense}})  # configs/_base_/models/fcvit.py
