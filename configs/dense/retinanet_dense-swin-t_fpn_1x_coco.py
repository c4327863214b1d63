# COCO RetinaNet 1x with a DenseSwin-T backbone, with Swin's RetinaNet recipe: mmdet's
# swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py, inherited as it is: stages 1-3 only (RetinaNet
# starts at stride 8; an unused stage-0 output would leave parameters without gradients) into the
# FPN with extra convs for strides 64 and 128, SGD lr 0.01, momentum 0.9, weight decay 1e-4 (none
# on dense attention's mixing weights), 500 warm-up iterations, 12 epochs with steps at 8 and 11,
# 2 images x 8 GPUs. The paper gives no detection numbers.
_base_ = [
    'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(backbone=_base_.dense_swin_tiny_dense_s8)  # configs/_base_/models/dense.py
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'mix_weight': dict(decay_mult=0.)}))
auto_scale_lr = dict(enable=False, base_batch_size=16)
