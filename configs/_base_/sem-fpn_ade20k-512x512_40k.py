# Semantic FPN on ADE20K at 512x512, 40k iterations: the recipe of PoolFormer and FCViT
# (fpn_*_ade20k_40k): AdamW lr 2e-4, wd 1e-4, poly (power 0.9) to 0, batch 4 x 8 GPUs, the
# dataset repeated x50, single-scale test with the long side 2048 and the short side 512.
# A family config only sets the backbone and the FPN input channels.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    neck=dict(in_channels=None, out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150))

train_dataloader = dict(
    batch_size=4,
    dataset=dict(_delete_=True, type='RepeatDataset', times=50,
                 dataset={{_base_.train_dataloader.dataset}}))

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', power=0.9, begin=0, end=40000, eta_min=0.0, by_epoch=False),
]
