# COCO Mask R-CNN with a PSLT-base backbone: the authors' released recipe
# (detection/configs/mask_rcnn_pslt_3x_coco.py): RepeatDataset x3 over 12 epochs, steps 8/11,
# multi-scale 1333x640..1333x800, AdamW lr 6e-5, wd 1e-4, FPN on all four levels, 2 x 8 GPUs.
# Released log: box AP 42.7, mask AP 38.9 on val2017.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::common/ms_3x_coco-instance.py',
    '../_base_/models/pslt.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.pslt_base_dense}},  # configs/_base_/models/pslt.py
    neck=dict(in_channels=[72, 144, 288, 576]))

val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=6e-5, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
