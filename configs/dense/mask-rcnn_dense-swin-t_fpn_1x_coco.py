# COCO Mask R-CNN 1x with a DenseSwin-T backbone, with Swin's recipe: mmdet's
# swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py, inherited as it is (AdamW lr 1e-4, wd 0.05, none on
# norms and relative position tables, 1000 linear warm-up iterations, 12 epochs with steps at 8
# and 11, 1333x800, flip, drop path 0.2, 2 images x 8 GPUs), and no weight decay on dense
# attention's mixing weights either. The paper gives no detection numbers.
_base_ = [
    'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(backbone=_base_.dense_swin_tiny_dense)  # configs/_base_/models/dense.py
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'mix_weight': dict(decay_mult=0.)}))
auto_scale_lr = dict(enable=False, base_batch_size=16)
