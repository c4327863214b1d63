# Semantic FPN on ADE20K at 512x512, 40k iterations: the recipe of PoolFormer and FCViT
# (fpn_*_ade20k_40k): mmseg's fpn_r50 head and neck for ADE20K's 150 classes, on the data of
# ../datasets/ade20k_repeat50.py (batch 4 x 8 GPUs, the training set repeated x50, single-scale
# test with the long side 2048 and the short side 512) with the schedule of
# ../schedules/adamw_poly-40k.py (AdamW lr 2e-4, wd 1e-4, poly (power 0.9) to 0).
# A family config lists this file with its models file and only sets the backbone
# (`backbone={{_base_.<name>}}`, replacing the ResNet-50) and the FPN input channels.
#
# The model file carries its data and schedule because the three are one published recipe that
# every family takes whole (so a family config names one recipe, as for re-ID).
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    '../datasets/ade20k_repeat50.py',
    'mmseg::_base_/default_runtime.py',
    '../schedules/adamw_poly-40k.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    neck=dict(in_channels=None, out_channels=256, num_outs=4),
    decode_head=dict(num_classes=150))
