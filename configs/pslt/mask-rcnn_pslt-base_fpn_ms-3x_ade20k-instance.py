# ADE20K instance segmentation (100 thing classes) with Mask R-CNN and PSLT-base. No released
# recipe exists: the model and optimiser follow the authors' COCO Mask R-CNN recipe (AdamW 6e-5,
# wd 1e-4, SyncBN, FPN on all levels), trained 36 epochs with steps at 27 and 33 on ADE20K's
# 20k training images at ADE20K's scale (shorter side 512..640, test 2560x640).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/ade20k_instance.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/models/pslt.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.pslt_base_dense}},  # configs/_base_/models/pslt.py
    neck=dict(in_channels=[72, 144, 288, 576]),
    roi_head=dict(bbox_head=dict(num_classes=100), mask_head=dict(num_classes=100)))

max_epochs = 36
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=6e-5, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
