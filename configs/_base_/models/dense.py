# Dense attention backbones (visattn_mm.DenseDeiT, visattn_mm.DenseSwinTransformer), set once.
# The configs in configs/dense/ list this file among their bases and read these names through
# `_base_.<name>` (e.g. `backbone=dict(_base_.dense_swin_tiny, out_indices=(0, 1, 2, 3))`).
# Only uniquely named variables live here (no `model`, no `custom_imports`), so this file can sit
# beside any toolbox's bases without a duplicate-key clash.

# ---- ImageNet-1k weights that the fine-tuning and dense-task configs start from: change a path
# here and every config that uses that backbone follows. DeiT weights: convert the authors' with
#   python tools/convert_official.py dense SRC pretrained/dense-deit-small_in1k.pth
# or train the ImageNet configs of configs/dense/ (the only source of DenseSwin weights); their
# checkpoints load the same way.
dense_deit_tiny_in1k = 'pretrained/dense-deit-tiny_in1k.pth'
dense_deit_small_in1k = 'pretrained/dense-deit-small_in1k.pth'
dense_swin_tiny_in1k = 'pretrained/dense-swin-tiny_in1k.pth'
dense_swin_small_in1k = 'pretrained/dense-swin-small_in1k.pth'

# ---- DeiT with dense attention, as released (koala719/Dense-ViT): 12 layers, heads of 64
# channels, no qkv bias, no drop path; the final LayerNorm is the released head's norm.
# tiny: C 192 with 2 heads (not DeiT-Ti's 3), small: C 384 with 6 heads. `num_heads=...`
# slims (or widens) every layer; the heads stay 64 channels wide.
dense_deit_tiny = dict(
    type='visattn_mm.DenseDeiT',
    arch='tiny',
    img_size=224,
    patch_size=16,
    out_type='cls_token',
    qkv_bias=False,
    drop_rate=0.,
    drop_path_rate=0.,
    final_norm=True)
dense_deit_small = dict(dense_deit_tiny, arch='small')

# ---- Swin with dense attention (values densely mixed within each stage). Arguments are those of
# mmpretrain's SwinTransformer; drop path as Swin's ImageNet recipe (T 0.2, S 0.3).
dense_swin_tiny = dict(
    type='visattn_mm.DenseSwinTransformer',
    arch='tiny',
    img_size=224,
    window_size=7,
    drop_path_rate=0.2)
dense_swin_small = dict(dense_swin_tiny, arch='small', drop_path_rate=0.3)

# dense prediction: all four stages (mmdet's / mmseg's Swin-T settings), from the ImageNet
# weights; `_delete_` replaces the toolbox config's own backbone (a Swin or a ResNet)
dense_swin_tiny_dense = dict(
    dense_swin_tiny,
    _delete_=True,
    out_indices=(0, 1, 2, 3),
    init_cfg=dict(type='Pretrained', checkpoint=dense_swin_tiny_in1k, prefix='backbone.'))
# RetinaNet starts at stride 8: stages 1-3 only, so no output norm is left without gradient
dense_swin_tiny_dense_s8 = dict(dense_swin_tiny_dense, out_indices=(1, 2, 3))
# semantic segmentation: mmseg's Swin-T UperNet uses drop path 0.3
dense_swin_tiny_seg = dict(dense_swin_tiny_dense, drop_path_rate=0.3)
