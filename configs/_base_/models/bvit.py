# Backbone settings of the BViT family (configs/bvit/): every config there takes its backbone from
# here with `backbone={{_base_.<name>}}`, after listing this file in its `_base_`. Each dict has
# `_delete_=True`, so it replaces the whole backbone of a toolbox's base config (e.g. a ResNet).
#
# The ImageNet checkpoints the dense-prediction, re-ID and transfer configs start from: change a
# path here and every config follows. Make them with the ImageNet configs of configs/bvit/, or
# from the authors' BViT weights with `python tools/convert_official.py bvit SRC DST` (those need
# `released_stem=True`, see configs/bvit/README.md).
bvit_tiny_in1k = 'pretrained/bvit-tiny_in1k.pth'
bvit_small_in1k = 'pretrained/bvit-small_in1k.pth'
broadswin_tiny_in1k = 'pretrained/broadswin-tiny_in1k.pth'

# ---- BViT: a DeiT-sized ViT (patch 16, no qkv bias, LayerNorm eps 1e-5) with broad attention
# after the last layer (weight 0.4, as released). For classification the backbone returns the
# normalised cls token (its final LayerNorm is the released head's norm).
bvit_tiny = dict(  # BViT-5M: C 192, 12 layers, 3 heads of 64
    _delete_=True,
    type='visattn_mm.BViT',
    arch='tiny',
    img_size=224,
    patch_size=16,
    out_type='cls_token',
    drop_path_rate=0.0,  # the released recipe trains without stochastic depth
    broad_weight=0.4)
bvit_small = dict(bvit_tiny, arch='small')  # BViT-22M: C 384, 12 layers, 6 heads of 64

# dense prediction and re-ID: the last layer's patch tokens as one stride-16 map (B, C, H/16, W/16)
# (after broad attention and the final norm), from the ImageNet weights; position table resized
# to the input's grid on the fly
bvit_small_dense = dict(
    bvit_small,
    out_type='featmap',
    out_indices=(11, ),
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=bvit_small_in1k, prefix='backbone.'))

# transfer (CIFAR): the classifier backbone, from the ImageNet weights
bvit_small_finetune = dict(
    bvit_small,
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=bvit_small_in1k, prefix='backbone.'))

# mmdet: visattn_mm.SimpleFeaturePyramid (ViTDet-style) makes strides 4, 8, 16, 32 (ViTDet's
# channels C/4, C/2, C, C) and a max-pooled stride 64 for the RPN from BViT-small's stride-16 map
bvit_small_sfp = dict(
    _delete_=True,
    type='visattn_mm.SimpleFeaturePyramid',
    backbone_channel=384,
    in_channels=[96, 192, 384, 384],
    out_channels=256,
    num_outs=5)

# ---- broad attention on Swin-T (mmpretrain SwinTransformer's arguments + broad_weight)
broadswin_tiny = dict(
    _delete_=True,
    type='visattn_mm.BroadSwinTransformer',
    arch='tiny',  # C 96, depths 2-2-6-2, heads 3-6-12-24; maps of 96/192/384/768 channels
    img_size=224,
    window_size=7,
    drop_path_rate=0.2,
    broad_weight=0.4)
# detection / instance segmentation: all four stages (mmdet's Swin-T settings)
broadswin_tiny_dense = dict(
    broadswin_tiny,
    out_indices=(0, 1, 2, 3),
    init_cfg=dict(type='Pretrained', checkpoint=broadswin_tiny_in1k, prefix='backbone.'))
# RetinaNet starts at stride 8: stages 1-3 only, so no output norm is left without gradient
broadswin_tiny_dense_s8 = dict(broadswin_tiny_dense, out_indices=(1, 2, 3))
# semantic segmentation: mmseg's Swin-T UperNet uses drop path 0.3
broadswin_tiny_seg = dict(broadswin_tiny_dense, drop_path_rate=0.3)

# ---- broad attention on T2T-ViT-14 (mmpretrain T2T_ViT's arguments + broad_weight)
broadt2t_vit_14 = dict(
    _delete_=True,
    type='visattn_mm.BroadT2TViT',
    img_size=224,
    in_channels=3,
    embed_dims=384,
    t2t_cfg=dict(token_dims=64, use_performer=False),
    num_layers=14,
    layer_cfgs=dict(num_heads=6, feedforward_channels=3 * 384),
    drop_path_rate=0.1,
    broad_weight=0.4,
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=.02),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
    ])
