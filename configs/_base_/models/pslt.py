# Backbone settings of the PSLT family (configs/pslt/ and configs/pslt_retinanet.py): every config
# there lists this file among its bases and takes its backbone with `backbone={{_base_.<name>}}`.
# Only uniquely named variables live here (no `model`, no `custom_imports`), so this file can sit
# beside any toolbox's bases. The task variants have `_delete_=True`: they replace the whole
# backbone of a toolbox's base config (e.g. a ResNet).
#
# The ImageNet checkpoint the dense-prediction and re-ID configs start from: change the path here
# and every config follows. Convert the authors' once with
#   python tools/convert_official.py pslt PSLT_authors.pth pretrained/pslt-base_in1k.pth
# or train it with configs/pslt/pslt-base_8xb128_in1k.py.
pslt_base_in1k = 'pretrained/pslt-base_in1k.pth'

# ---- classification (PSLT-base, embed 36, the paper's 9.2M model): the last stage through the
# released head's LayerNorm(16 C0) on the tokens, then pooling; tiny / large change `arch`
pslt_base = dict(
    type='visattn_mm.PSLT',
    arch='base',
    out_indices=(3, ),
    drop_path_rate=0.2,
    final_norm=True)

# ---- detection and segmentation (the authors' COCO recipes): all four stages (72/144/288/576
# channels), SyncBN (BN on one device: mmengine reverts it), from the ImageNet weights
pslt_base_dense = dict(
    _delete_=True,
    type='visattn_mm.PSLT',
    arch='base',
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.2,
    norm_cfg=dict(type='SyncBN', requires_grad=True),
    init_cfg=dict(type='Pretrained', checkpoint=pslt_base_in1k, prefix='backbone.'))

# ---- re-ID: the last stage's map (576 channels), drop path 0.1, from the ImageNet weights
pslt_base_reid = dict(
    _delete_=True,
    type='visattn_mm.PSLT',
    arch='base',
    out_indices=(3, ),
    drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint=pslt_base_in1k, prefix='backbone.'))
