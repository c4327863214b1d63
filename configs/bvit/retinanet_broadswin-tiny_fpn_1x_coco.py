# COCO RetinaNet 1x with Swin-T + broad attention: mmdet's Swin-T RetinaNet
# (retinanet_swin-t-p4-w7_fpn_1x_coco): stages 1-3 (strides 8-32) into the FPN with extra convs
# for strides 64 and 128, SGD lr 0.01, momentum 0.9, weight decay 1e-4, 12 epochs with steps at 8
# and 11, 500 warm-up iterations, 2 images x 8 GPUs. mmdet's Swin-T: box AP 37.7.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    # stages 1-3 only (an unused stage-0 output norm would get no gradient)
    backbone={{_base_.broadswin_tiny_dense_s8}},
    neck=dict(in_channels=[192, 384, 768], start_level=0, num_outs=5))

optim_wrapper = dict(optimizer=dict(lr=0.01))
auto_scale_lr = dict(enable=False, base_batch_size=16)
