# COCO Mask R-CNN 1x with FCViT-B12 (paper: S12), the authors' released recipe
# (detection/configs/mask_rcnn_fcvit_b12_fpn_1x_coco.py): AdamW lr 2e-4, wd 1e-4, 12 epochs with
# steps at 8 and 11, 500 warm-up iterations, 1333x800, flip, 4 images x 8 GPUs, mixed precision.
# Released: box AP 42.3, mask AP 38.6.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/fcvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.fcvit_b12_dense}},  # configs/_base_/models/fcvit.py
    neck=dict(in_channels=[64, 128, 320, 512]))

train_dataloader = dict(batch_size=4)
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',  # the release trained in fp16 (apex O1)
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=32)
