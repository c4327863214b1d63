"""End-to-end cases of the Dense attention family, merged into tests/test_e2e.py's ``CASES``
(same tuple layout: config, toolbox, mini set, iterations or epochs, mini_config overrides,
metrics). One per task (RetinaNet and Mask R-CNN count as two); the DenseSwin cases need
``visattn_mm.DenseSwinTransformer``."""
from e2e_metrics import CLS, DET, REID, SEM, SEGM

CASES = {
    'dense-cls-imagenet': ('configs/dense/dense-deit-tiny_4xb256_in1k.py', 'mmpretrain',
                           'imagenet', 1, dict(scale=(128, 110), crop=(96, 96), batch_size=10),
                           CLS),
    'dense-reid-market1501': ('configs/dense/reid_dense-deit-small_gap_1xb64-24k_market1501.py',
                              'mmdet', 'market1501', 4, dict(), REID),
    'dense-maskrcnn-coco': ('configs/dense/mask-rcnn_dense-swin-t_fpn_1x_coco.py', 'mmdet',
                            'coco', 1, dict(scale=(160, 128), batch_size=4), SEGM),
    'dense-upernet-ade20k': ('configs/dense/upernet_dense-swin-t_8xb2-160k_ade20k-512x512.py',
                             'mmseg', 'ade20k', 4,
                             dict(scale=(256, 128), crop=(128, 128), batch_size=2), SEM),
    'dense-retinanet-coco': ('configs/dense/retinanet_dense-swin-t_fpn_1x_coco.py', 'mmdet',
                             'coco', 1, dict(scale=(160, 128), batch_size=4), DET),
    'dense-maskrcnn-ade20k': ('configs/dense/mask-rcnn_dense-swin-t_fpn_ms-3x_ade20k-instance.py',
                              'mmdet', 'ade20k', 1, dict(scale=(160, 128), batch_size=4), SEGM),
}
