# COCO RetinaNet 1x with FCViT-B12. Not released by the authors: their Mask R-CNN optimiser
# (AdamW 2e-4, wd 1e-4, 12 epochs, steps 8/11) on mmdet's RetinaNet 1x, FPN from level 1 with
# extra convs on the input (the PVT/PoolFormer RetinaNet setting), 2 images x 8 GPUs.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

pretrained = 'pretrained/fcvit-b12_in1k.pth'  # tools/convert_official.py fcvit ...
model = dict(
    backbone=dict(
        _delete_=True,
        type='visattn_mm.FCViT',
        arch='b12',
        out_indices=(0, 1, 2, 3),
        layer_scale_init_value=1e-6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 320, 512], start_level=1, add_extra_convs='on_input',
              num_outs=5))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
auto_scale_lr = dict(enable=False, base_batch_size=16)
