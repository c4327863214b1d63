# ADE20K semantic segmentation with UperNet and Swin-T + broad attention, 512x512, 160k
# iterations: mmseg's Swin-T UperNet recipe (AdamW 6e-5, weight decay 0.01, none on norms and
# position tables, 1500 warm-up iterations, poly (power 1) to 0, drop path 0.3, 2 images x 8
# GPUs). mmseg's Swin-T: mIoU 44.4.
_base_ = [
    'mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
    '../_base_/models/bvit.py',
]
custom_imports = dict(imports=['visattn_mm'], allow_failed_imports=False)

# four stages (96/192/384/768 channels), Pretrained from broadswin_tiny_in1k
model = dict(backbone={{_base_.broadswin_tiny_seg}})
