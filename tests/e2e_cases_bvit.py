"""End-to-end cases of the BViT family (broad attention), merged into tests/test_e2e.py's
``CASES`` (same tuple layout: config, toolbox, mini set, iterations or epochs, mini_config
overrides, metrics). One per task; every name starts with ``bvit-`` so ``-k bvit`` selects them
all. The BroadSwin cases need ``visattn_mm.BroadSwinTransformer``."""
from e2e_metrics import CLS, DET, REID, SEM, SEGM

CASES = {
    # BViT-tiny classifier (cls token + linear head)
    'bvit-cls-imagenet': ('configs/bvit/bvit-tiny_4xb256_in1k.py', 'mmpretrain', 'imagenet', 1,
                          dict(scale=(128, 110), crop=(96, 96), batch_size=10), CLS),
    # BViT-small stride-16 map -> SimpleFeaturePyramid (strides 4-64) -> Mask R-CNN
    'bvit-maskrcnn-coco': ('configs/bvit/mask-rcnn_bvit-small_sfp_1x_coco.py', 'mmdet', 'coco',
                           1, dict(scale=(160, 128), batch_size=4), SEGM),
    # BViT-small -> SimpleFeaturePyramid (strides 4-32) -> UperNet
    'bvit-upernet-ade20k': ('configs/bvit/upernet_bvit-small_sfp_8xb2-160k_ade20k-512x512.py',
                            'mmseg', 'ade20k', 4,
                            dict(scale=(256, 128), crop=(128, 128), batch_size=2), SEM),
    # BViT-small 16x8 map of a 256x128 crop (here 128x64) -> GAP -> re-ID head
    'bvit-reid-market1501': ('configs/bvit/reid_bvit-small_gap_1xb64-24k_market1501.py', 'mmdet',
                             'market1501', 4, dict(), REID),
    # BroadSwin-T, stages 1-3 -> FPN with extra convs -> RetinaNet
    'bvit-broadswin-retinanet-coco': ('configs/bvit/retinanet_broadswin-tiny_fpn_1x_coco.py',
                                      'mmdet', 'coco', 1, dict(scale=(160, 128), batch_size=4),
                                      DET),
    # BroadSwin-T, four stages -> FPN -> Mask R-CNN on ADE20K instances
    'bvit-broadswin-maskrcnn-ade20k': (
        'configs/bvit/mask-rcnn_broadswin-tiny_fpn_ms-3x_ade20k-instance.py', 'mmdet', 'ade20k',
        1, dict(scale=(160, 128), batch_size=4), SEGM),
    # BViT-small -> SimpleFeaturePyramid from stride 8 (strides 8-128) -> RetinaNet
    'bvit-retinanet-coco': ('configs/bvit/retinanet_bvit-small_sfp_1x_coco.py', 'mmdet', 'coco',
                            1, dict(scale=(160, 128), batch_size=4), DET),
    # T2T-ViT-14 + broad attention classifier (position table resized to the 96x96 crop)
    'bvit-broadt2t-cls-imagenet': ('configs/bvit/broadt2t-vit-t-14_8xb64_in1k.py', 'mmpretrain',
                                   'imagenet', 1,
                                   dict(scale=(128, 110), crop=(96, 96), batch_size=10), CLS),
}
