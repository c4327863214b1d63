"""The end-to-end case table: every family x task config the package ships a recipe for, shortened
by ``visattn_mm.testing.mini_config.make_mini_config`` onto a generated mini dataset.

Each case trains a step or a few (``iters``: iterations of an iteration-based config, epochs of
an epoch-based one) and is then scored by the config's own evaluator on the mini set's test
split. ``via`` says how it runs:

- ``'mim'``: ``mim train`` then ``mim test`` in their own processes, as a user runs them. One
  case per toolbox and model type (classifier, RetinaNet, Mask R-CNN, re-ID, segmentor), the
  five spread over the four families;
- ``'runner'``: in the pytest process, ``Runner.from_cfg(cfg)``, ``runner.train()`` then
  ``runner.test()`` (tests/e2e/harness.py keeps one case's scope, logger and visualizer from
  leaking into the next).

Every name starts with the family (``-k bvit`` picks a family, ``-k maskrcnn`` a model type).
"""
from typing import NamedTuple, Tuple

# the metric keys each task's evaluator must report (tests/apis/test_tools_train.py takes DET)
DET = ('coco/bbox_mAP', 'coco/bbox_mAP_50')
SEGM = DET + ('coco/segm_mAP', 'coco/segm_mAP_50')
SEM = ('aAcc', 'mIoU')
REID = ('market1501/mAP', 'market1501/R1', 'market1501/R5', 'market1501/R10')
CLS = ('accuracy/top1', )

# mini set -> (maker in visattn_mm.testing.mini_datasets, its size arguments): a batch or two
# of training images and a few test images (a Mask R-CNN image costs seconds on one core: 512
# sampled RoIs through the box head in training, 100 detections through the mask head in the
# test)
MINI_SETS = {
    'coco': ('make_coco', dict(num_train=2, num_val=1)),
    'ade20k': ('make_ade20k_instance', dict(num_train=2, num_val=1)),
    'imagenet': ('make_imagenet', dict(num_train=4, num_val=2)),
    'market1501': ('make_market1501', dict(num_train_ids=6, num_test_ids=4)),
}

# make_mini_config overrides per task
DET_SIZE = dict(scale=(160, 128), batch_size=2)
SEM_SIZE = dict(scale=(256, 128), crop=(128, 128), batch_size=2)
CLS_SIZE = dict(scale=(128, 110), crop=(96, 96), batch_size=10)
REID_SIZE: dict = dict()


class Case(NamedTuple):
    config: str  # relative to the repository root
    toolbox: str  # the config's default_scope (and mim's toolbox argument)
    data: str  # a key of MINI_SETS
    iters: int  # iterations (iteration-based loop) or epochs (epoch-based loop)
    overrides: dict  # make_mini_config keyword arguments
    metrics: Tuple[str, ...]  # keys the evaluator must report
    via: str  # 'mim' (two processes) or 'runner' (in process)


CASES = {
    # ---- PSLT
    'pslt-retinanet-coco': Case(
        'configs/pslt_retinanet.py', 'mmdet', 'coco', 1, DET_SIZE, DET, 'runner'),
    'pslt-maskrcnn-coco': Case(
        'configs/pslt/mask-rcnn_pslt-base_fpn_ms-3x_coco.py', 'mmdet', 'coco', 1, DET_SIZE,
        SEGM, 'runner'),
    'pslt-maskrcnn-ade20k': Case(
        'configs/pslt/mask-rcnn_pslt-base_fpn_ms-3x_ade20k-instance.py', 'mmdet', 'ade20k', 1,
        DET_SIZE, SEGM, 'runner'),
    'pslt-fpn-ade20k': Case(
        'configs/pslt/fpn_pslt-base_8xb4-40k_ade20k-512x512.py', 'mmseg', 'ade20k', 2,
        SEM_SIZE, SEM, 'mim'),
    'pslt-reid-market1501': Case(
        'configs/pslt/reid_pslt-base_gap_1xb64-24k_market1501.py', 'mmdet', 'market1501', 2,
        REID_SIZE, REID, 'runner'),
    'pslt-cls-imagenet': Case(
        'configs/pslt/pslt-tiny_8xb128_in1k.py', 'mmpretrain', 'imagenet', 1, CLS_SIZE, CLS,
        'runner'),
    # ---- FCViT
    'fcvit-maskrcnn-coco': Case(
        'configs/fcvit/mask-rcnn_fcvit-b12_fpn_1x_coco.py', 'mmdet', 'coco', 1, DET_SIZE, SEGM,
        'mim'),
    'fcvit-fpn-ade20k': Case(
        'configs/fcvit/fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py', 'mmseg', 'ade20k', 2,
        SEM_SIZE, SEM, 'runner'),
    'fcvit-reid-market1501': Case(
        'configs/fcvit/reid_fcvit-b12_gap_1xb64-24k_market1501.py', 'mmdet', 'market1501', 2,
        REID_SIZE, REID, 'runner'),
    'fcvit-cls-imagenet': Case(
        'configs/fcvit/fcvit-tiny_8xb128_in1k.py', 'mmpretrain', 'imagenet', 1, CLS_SIZE, CLS,
        'runner'),
    # ---- BViT: BViT-tiny/small (broad attention), BroadSwin-T, BroadT2T-ViT-14
    # BViT-tiny classifier (cls token + linear head)
    'bvit-cls-imagenet': Case(
        'configs/bvit/bvit-tiny_4xb256_in1k.py', 'mmpretrain', 'imagenet', 1, CLS_SIZE, CLS,
        'runner'),
    # T2T-ViT-14 + broad attention classifier (position table resized to the 96x96 crop)
    'bvit-broadt2t-cls-imagenet': Case(
        'configs/bvit/broadt2t-vit-t-14_8xb64_in1k.py', 'mmpretrain', 'imagenet', 1, CLS_SIZE,
        CLS, 'runner'),
    # BViT-small stride-16 map -> SimpleFeaturePyramid (strides 4-64) -> Mask R-CNN
    'bvit-maskrcnn-coco': Case(
        'configs/bvit/mask-rcnn_bvit-small_sfp_1x_coco.py', 'mmdet', 'coco', 1, DET_SIZE, SEGM,
        'runner'),
    # BViT-small -> SimpleFeaturePyramid from stride 8 (strides 8-128) -> RetinaNet
    'bvit-retinanet-coco': Case(
        'configs/bvit/retinanet_bvit-small_sfp_1x_coco.py', 'mmdet', 'coco', 1, DET_SIZE, DET,
        'runner'),
    # BViT-small -> SimpleFeaturePyramid (strides 4-32) -> UperNet
    'bvit-upernet-ade20k': Case(
        'configs/bvit/upernet_bvit-small_sfp_8xb2-160k_ade20k-512x512.py', 'mmseg', 'ade20k', 2,
        SEM_SIZE, SEM, 'runner'),
    # BViT-small 16x8 map of a 256x128 crop (here 128x64) -> GAP -> re-ID head
    'bvit-reid-market1501': Case(
        'configs/bvit/reid_bvit-small_gap_1xb64-24k_market1501.py', 'mmdet', 'market1501', 2,
        REID_SIZE, REID, 'mim'),
    # BroadSwin-T, stages 1-3 -> FPN with extra convs -> RetinaNet
    'bvit-broadswin-retinanet-coco': Case(
        'configs/bvit/retinanet_broadswin-tiny_fpn_1x_coco.py', 'mmdet', 'coco', 1, DET_SIZE,
        DET, 'runner'),
    # BroadSwin-T, four stages -> FPN -> Mask R-CNN on ADE20K instances
    'bvit-broadswin-maskrcnn-ade20k': Case(
        'configs/bvit/mask-rcnn_broadswin-tiny_fpn_ms-3x_ade20k-instance.py', 'mmdet', 'ade20k',
        1, DET_SIZE, SEGM, 'runner'),
    # ---- Dense attention: DenseDeiT, DenseSwin-T
    'dense-cls-imagenet': Case(
        'configs/dense/dense-deit-tiny_4xb256_in1k.py', 'mmpretrain', 'imagenet', 1, CLS_SIZE,
        CLS, 'mim'),
    'dense-reid-market1501': Case(
        'configs/dense/reid_dense-deit-small_gap_1xb64-24k_market1501.py', 'mmdet',
        'market1501', 2, REID_SIZE, REID, 'runner'),
    'dense-maskrcnn-coco': Case(
        'configs/dense/mask-rcnn_dense-swin-t_fpn_1x_coco.py', 'mmdet', 'coco', 1, DET_SIZE,
        SEGM, 'runner'),
    'dense-retinanet-coco': Case(
        'configs/dense/retinanet_dense-swin-t_fpn_1x_coco.py', 'mmdet', 'coco', 1, DET_SIZE,
        DET, 'mim'),
    'dense-upernet-ade20k': Case(
        'configs/dense/upernet_dense-swin-t_8xb2-160k_ade20k-512x512.py', 'mmseg', 'ade20k', 2,
        SEM_SIZE, SEM, 'runner'),
    'dense-maskrcnn-ade20k': Case(
        'configs/dense/mask-rcnn_dense-swin-t_fpn_ms-3x_ade20k-instance.py', 'mmdet', 'ade20k',
        1, DET_SIZE, SEGM, 'runner'),
}

MIM_CASES = sorted(name for name, case in CASES.items() if case.via == 'mim')
RUNNER_CASES = sorted(name for name, case in CASES.items() if case.via == 'runner')


# --------------------------------------------------------------------------------------------
# learning: one case per toolbox (tests/e2e/test_learning.py)
# --------------------------------------------------------------------------------------------

class LearningCase(NamedTuple):
    config: str  # a shipped config, relative to the repository root
    data: str  # a key of MINI_SETS
    sizes: dict  # the mini set's size arguments (more images than MINI_SETS')
    iters: int  # iterations (iteration-based loop) or epochs (epoch-based loop)
    overrides: dict  # make_mini_config keyword arguments (scale, crop, batch_size, lr_mult)
    model: dict  # 'dotted.key': value set after make_mini_config: a small arch
    metric: str  # the evaluator's key compared before / after training
    margin: float  # trained metric >= untrained metric + margin
    loss_ratio: float  # mean of the last 5 losses <= loss_ratio x mean of the first 5


# The margins and loss ratios are set below what was measured on an AMD EPYC under three
# training seeds (tests/e2e/test_learning.py's docstring has the numbers), with room for other
# CPUs' rounding: nothing here assumes bit-equal results.
LEARNING = {
    # BViT-tiny's recipe (RandAugment, Mixup/CutMix, label smoothing, 1000-way head) with a
    # 4-layer, 48-wide BViT at 64 px; five classes, 16 training images each, 16 epochs of 5
    # batches. Top-1 over 20 means better than naming one class for every image.
    'bvit-cls-imagenet': LearningCase(
        'configs/bvit/bvit-tiny_4xb256_in1k.py', 'imagenet',
        dict(num_train=16, num_val=8, size=64), 16,
        dict(scale=(72, 64), crop=(64, 64), batch_size=16, lr_mult=2.0),
        {'model.backbone.arch': dict(embed_dims=48, num_layers=4, num_heads=3,
                                     feedforward_channels=96),
         'model.backbone.img_size': 64,
         'model.head.in_channels': 48},
        'accuracy/top1', margin=40.0, loss_ratio=0.6),
    # the headline PSLT RetinaNet with a one-block-per-stage PSLT (embed 12), 32-channel FPN and
    # head; 32 images, 15 epochs of 4 batches, lr x5 (AdamW 5e-4)
    'pslt-retinanet-coco': LearningCase(
        'configs/pslt_retinanet.py', 'coco', dict(num_train=32, num_val=8, size=128), 15,
        dict(scale=(128, 128), batch_size=8, lr_mult=5.0),
        {'model.backbone.arch': dict(embed_dims=12, depths=(1, 1, 1, 1), num_heads=(2, 4)),
         'model.backbone.drop_path_rate': 0.0,
         'model.neck.in_channels': [24, 48, 96, 192],
         'model.neck.out_channels': 32,
         'model.bbox_head.in_channels': 32,
         'model.bbox_head.feat_channels': 32,
         'model.bbox_head.stacked_convs': 1},
        'coco/bbox_mAP_50', margin=0.1, loss_ratio=0.75),
    # FCViT Semantic FPN with a one-block-per-stage FCViT (widths 16-64, layer scale 1), 32-wide
    # neck and head; 16 scenes, 40 iterations of 4 64x64 crops, lr x5 (AdamW 1e-3)
    'fcvit-fpn-ade20k': LearningCase(
        'configs/fcvit/fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py', 'ade20k',
        dict(num_train=16, num_val=6, size=96), 40,
        dict(scale=(128, 96), crop=(64, 64), batch_size=4, lr_mult=5.0),
        {'model.backbone.arch': dict(depths=[1, 1, 1, 1], widths=[16, 32, 48, 64],
                                     mlp_ratios=[4, 4, 4, 4]),
         'model.backbone.layer_scale_init_value': 1.0,
         'model.neck.in_channels': [16, 32, 48, 64],
         'model.neck.out_channels': 32,
         'model.decode_head.in_channels': [32, 32, 32, 32],
         'model.decode_head.channels': 32},
        'mIoU', margin=10.0, loss_ratio=0.85),
    # FCViT re-ID with the same small FCViT, a 64-wide FC and 32-d embedding; 12 training
    # identities, 60 iterations of 8 identities x 4 crops, lr x3 (AdamW ~1e-3)
    'fcvit-reid-market1501': LearningCase(
        'configs/fcvit/reid_fcvit-b12_gap_1xb64-24k_market1501.py', 'market1501',
        dict(num_train_ids=12, num_test_ids=8), 60, dict(lr_mult=3.0),
        {'model.backbone.arch': dict(depths=[1, 1, 1, 1], widths=[16, 32, 48, 64],
                                     mlp_ratios=[4, 4, 4, 4]),
         'model.backbone.drop_path_rate': 0.0,
         'model.head.in_channels': 64,
         'model.head.fc_channels': 64,
         'model.head.out_channels': 32,
         'train_dataloader.dataset.triplet_sampler': dict(num_ids=8, ins_per_id=4)},
        'market1501/mAP', margin=0.2, loss_ratio=0.85),
}
