# COCO RetinaNet with a PSLT-base backbone: the authors' released recipe
# (detection/configs/retinanet_pslt_3x_coco.py): "3x" = RepeatDataset x3 over 12 epochs with
# steps at 8 and 11, multi-scale training (1333x640..1333x800), AdamW lr 1e-4, wd 1e-4,
# FPN from level 1 with extra convs on the input, 2 images x 8 GPUs.
#
#   mim train mmdet configs/pslt_retinanet.py
#   mim test mmdet configs/pslt_retinanet.py --checkpoint work_dirs/pslt_retinanet/epoch_12.pth
#
# ImageNet weights: convert the authors' checkpoint once (its path, and the backbone settings,
# are in configs/_base_/models/pslt.py):
#   python tools/convert_official.py pslt PSLT_authors.pth pretrained/pslt-base_in1k.pth
# (or train them with configs/pslt/pslt-base_8xb128_in1k.py).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::common/ms_3x_coco.py',
    '_base_/models/pslt.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.pslt_base_dense}},  # configs/_base_/models/pslt.py
    neck=dict(
        in_channels=[72, 144, 288, 576],
        start_level=1,
        add_extra_convs='on_input',
        num_outs=5))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=1e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=16)
