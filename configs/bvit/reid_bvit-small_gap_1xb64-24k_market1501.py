# Market-1501 re-ID with a BViT-22M (BViT-small) backbone. The authors released no re-ID code;
# the recipe is configs/_base_/models/reid_market1501.py. The last layer's patch tokens form a
# 16x8 map for the 256x128 crops (position table resized from 14x14); global average pooling of
# that map feeds the head. (mmdet's re-ID GlobalAveragePooling takes maps only, so out_type='avg_featmap'
# would need neck=None instead.)
_base_ = ['../_base_/models/reid_market1501.py', '../_base_/models/bvit.py']

model = dict(
    backbone={{_base_.bvit_small_dense}},  # configs/_base_/models/bvit.py
    head=dict(in_channels=384))
