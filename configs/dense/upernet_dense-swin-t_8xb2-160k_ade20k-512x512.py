# ADE20K semantic segmentation with UperNet and a DenseSwin-T backbone, with Swin's recipe:
# mmseg's swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py, inherited
# as it is (512x512 crops, AdamW lr 6e-5, wd 0.01, none on norms and relative position tables,
# 1500 linear warm-up iterations, poly (power 1.0) to 0 at 160k, 2 images x 8 GPUs, drop path
# 0.3, auxiliary FCN head on stage 2), and no weight decay on dense attention's mixing weights.
# The paper gives no segmentation numbers.
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/dense.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

model = dict(backbone=_base_.dense_swin_tiny_seg)  # configs/_base_/models/dense.py
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'mix_weight': dict(decay_mult=0.)}))
