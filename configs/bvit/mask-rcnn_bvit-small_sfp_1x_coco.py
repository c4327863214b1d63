# COCO Mask R-CNN 1x with BViT-22M (BViT-small) and a ViTDet-style simple feature pyramid.
# BViT is a plain ViT: its last layer (after broad attention and the final LayerNorm) gives one
# stride-16 map, from which visattn_mm.SimpleFeaturePyramid builds strides 4-32 (+ a max-pooled
# stride 64 for the RPN). The authors released no detection recipe; this is mmdet's Swin-T
# Mask R-CNN 1x schedule for transformer backbones (AdamW 1e-4, weight decay 0.05, none on norms,
# biases, position table and cls token, 1000 warm-up iterations, 12 epochs with steps at 8 and 11,
# 1333x800, flip, 2 images x 8 GPUs) with the stochastic depth (0.1) of ViT detectors.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    '../_base_/schedules/vit-adamw_1x_coco.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    # stride-16 map of 384 channels, Pretrained from bvit_small_in1k (configs/_base_/models/bvit.py)
    backbone={{_base_.bvit_small_dense}},
    neck={{_base_.bvit_small_sfp}})
