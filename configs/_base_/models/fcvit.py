# Backbone settings of the FCViT family (configs/fcvit/): every config there lists this file among
# its bases (or inherits a config that does) and takes its backbone with
# `backbone={{_base_.<name>}}`. Only uniquely named variables live here (no `model`, no
# `custom_imports`), so this file can sit beside any toolbox's bases. The task variants have
# `_delete_=True`: they replace the whole backbone of a toolbox's base config (e.g. a ResNet).
#
# The ImageNet checkpoints the dense-prediction and re-ID configs start from: change a path here
# and every config follows. Convert the authors' with `python tools/convert_official.py fcvit
# SRC DST` or train them with the ImageNet configs of configs/fcvit/.
fcvit_b12_in1k = 'pretrained/fcvit-b12_in1k.pth'
fcvit_b24_in1k = 'pretrained/fcvit-b24_in1k.pth'

# ---- classification (FCViT-tiny, the recipe's base; b12 / b24 / b48 change `arch` and drop
# path): the last stage through norm3, the released head's GroupNorm(1, C), before pooling
fcvit_tiny = dict(type='visattn_mm.FCViT', arch='tiny', out_indices=(3, ), drop_path_rate=0.1)

# ---- detection and segmentation: all four stages (64/128/320/512 channels), layer scales
# initialised at 1e-6 as in the released det/seg wrappers (the pretrained weights overwrite them)
fcvit_b12_dense = dict(
    _delete_=True,
    type='visattn_mm.FCViT',
    arch='b12',
    out_indices=(0, 1, 2, 3),
    layer_scale_init_value=1e-6,
    init_cfg=dict(type='Pretrained', checkpoint=fcvit_b12_in1k, prefix='backbone.'))
# RetinaNet starts at stride 8: stages 1-3 only (an unused stage-0 output norm would get no
# gradient and stall distributed training; the authors' FORK_LAST3 switch)
fcvit_b12_dense_s8 = dict(fcvit_b12_dense, out_indices=(1, 2, 3))
fcvit_b24_dense = dict(
    fcvit_b12_dense,
    arch='b24',
    init_cfg=dict(type='Pretrained', checkpoint=fcvit_b24_in1k, prefix='backbone.'))
# UperNet (mmseg's recipe for hierarchical transformers) adds drop path 0.1
fcvit_b24_seg = dict(fcvit_b24_dense, drop_path_rate=0.1)

# ---- re-ID: the classifier's backbone (last stage, output GroupNorm feeding the pooling, drop
# path 0.1) at B12, from the ImageNet weights
fcvit_b12_reid = dict(
    fcvit_tiny,
    _delete_=True,
    arch='b12',
    init_cfg=dict(type='Pretrained', checkpoint=fcvit_b12_in1k, prefix='backbone.'))
