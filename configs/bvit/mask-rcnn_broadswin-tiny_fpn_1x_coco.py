# COCO Mask R-CNN 1x with Swin-T + broad attention. No recipe was released for it; this is
# mmdet's Swin-T Mask R-CNN 1x (mask-rcnn_swin-t-p4-w7_fpn_1x_coco), inherited as it is: AdamW
# 1e-4, weight decay 0.05 (none on norms and position tables), 1000 warm-up iterations, 12 epochs
# with steps at 8 and 11, 1333x800, flip, 2 images x 8 GPUs, drop path 0.2. mmdet's Swin-T:
# box 42.7 / mask 39.3.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

# four stages, Pretrained from broadswin_tiny_in1k (configs/_base_/models/bvit.py)
model = dict(backbone={{_base_.broadswin_tiny_dense}})
auto_scale_lr = dict(enable=False, base_batch_size=16)
