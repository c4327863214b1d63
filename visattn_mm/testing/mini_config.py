"""Turn a full-size config into a short run on a generated mini dataset.

:func:`make_mini_config` returns the shortened config; ``tools/mini_config.py`` writes it::

    python tools/mini_config.py CONFIG --data-root data/mini/coco --out work_dirs/mini.py \
        [--iters 40] [--scale 320 256] [--lr-mult 1.0]

The model, optimiser type and pipelines stay those of CONFIG; what changes is what a few
iterations on a laptop-sized dataset need: the data root (the mini sets use the real datasets'
layout), image scales, batch sizes, worker processes, the schedule length, mixed precision (off:
CPUs have no fp16 training) and pretrained weights (none: the mini sets train from scratch).
The result is an ordinary config file for ``mim train`` / ``mim test``.
"""
import json
import os.path as osp
from typing import Optional, Sequence

from mmengine.config import Config, ConfigDict

WRAPPERS = ('RepeatDataset', 'ClassBalancedDataset')


def _unwrap(dataset: ConfigDict) -> ConfigDict:
    while dataset.get('type') in WRAPPERS:
        dataset = dataset.dataset
    return dataset


def _toolbox(cfg: Config) -> str:
    return cfg.get('default_scope', 'mmdet')


def _coco_classes(ann_path: str) -> Optional[tuple]:
    """Class names in category-id order from a COCO-style file (None if it is not one)."""
    if not osp.isfile(ann_path) or not ann_path.endswith('.json'):
        return None
    with open(ann_path) as f:
        cats = json.load(f).get('categories', [])
    return tuple(c['name'] for c in sorted(cats, key=lambda c: c['id'])) or None


def _rescale_pipeline(pipeline: list, scale: Sequence[int], crop: Sequence[int]) -> None:
    """Shrink every resize/crop step of a pipeline (in place); nested broadcasters too."""
    long_side, short_side = scale
    for t in pipeline:
        kind = t.get('type', '')
        if 'transforms' in t:  # TransformBroadcaster & co.
            _rescale_pipeline(t.transforms, scale, crop)
        if kind in ('Resize', 'RandomResize', 'RandomChoiceResize') and 'scale' in t:
            if isinstance(t.scale, (list, tuple)) and t.scale and \
                    isinstance(t.scale[0], (list, tuple)):  # a list of (w, h) choices
                t.scale = [(long_side, short_side - 32), (long_side, short_side)]
            elif not t.get('keep_ratio', True):  # a fixed (w, h), e.g. re-ID crops
                t.scale = tuple(max(16, s // 2) for s in t.scale)
            else:
                t.scale = (long_side, short_side)
        elif kind == 'ResizeEdge':
            t.scale = short_side
        elif kind in ('RandomResizedCrop', 'CenterCrop'):
            key = 'scale' if 'scale' in t else 'crop_size'
            t[key] = crop[0]
        elif kind == 'RandomCrop' and 'crop_size' in t:
            t.crop_size = tuple(crop)


def make_mini_config(config: str, data_root: str, iters: int = 40,
                     scale: Sequence[int] = (320, 256), crop: Sequence[int] = (128, 128),
                     batch_size: Optional[int] = None, lr_mult: float = 1.0,
                     val_interval: Optional[int] = None, validate: bool = True) -> Config:
    """The config of a short run of ``config`` on the mini dataset at ``data_root``.

    ``validate=False`` drops validation from training (``mim test`` still has the test set).
    """
    cfg = Config.fromfile(config)
    data_root = osp.join(osp.abspath(data_root), '')
    toolbox = _toolbox(cfg)

    # ---- model: no pretrained weights (the mini sets train from scratch)
    model = cfg.model
    model.pop('pretrained', None)
    model.pop('init_cfg', None)
    if 'backbone' in model:
        model.backbone.init_cfg = None

    # ---- data
    classes = None
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader is None:
            continue
        loader.num_workers = 0
        loader.persistent_workers = False
        if split == 'train':
            loader.dataset = _unwrap(loader.dataset)
            if batch_size:
                loader.batch_size = batch_size
        ds = loader.dataset
        ds.data_root = data_root
        if 'pipeline' in ds:
            _rescale_pipeline(ds.pipeline, scale, crop)
        if split != 'train' and ds.get('ann_file'):
            classes = classes or _coco_classes(osp.join(data_root, ds.ann_file))
        evaluator = cfg.get(f'{split}_evaluator')
        if evaluator is not None and split != 'train':
            for ev in (evaluator if isinstance(evaluator, list) else [evaluator]):
                if ev.get('ann_file'):
                    ev.ann_file = osp.join(data_root, ds.ann_file)
    # a COCO-style mini set with its own (smaller) category list
    ds_type = _unwrap(cfg.train_dataloader.dataset).get('type')
    if classes is not None and ds_type == 'CocoDataset':
        for split in ('train', 'val', 'test'):
            cfg[f'{split}_dataloader'].dataset.metainfo = dict(classes=classes)
        _set_num_classes(model, len(classes))
    if ds_type == 'ReIDDataset':  # the head classifies the training identities
        train_ds = cfg.train_dataloader.dataset
        with open(osp.join(data_root, train_ds.ann_file)) as f:
            num_ids = len({line.split()[-1] for line in f if line.strip()})
        model.head.num_classes = num_ids
        if train_ds.get('triplet_sampler'):
            train_ds.triplet_sampler = dict(num_ids=min(4, num_ids), ins_per_id=2)
    if toolbox == 'mmdet':
        _keep_all_detections(model)
    if toolbox == 'mmseg' and 'data_preprocessor' in model:
        model.data_preprocessor.size = tuple(crop)

    # ---- schedule: `iters` iterations (or epochs for epoch-based loops), then one evaluation
    optim = cfg.optim_wrapper
    if optim.get('type') == 'AmpOptimWrapper':
        optim.type = 'OptimWrapper'
        optim.pop('loss_scale', None)
    if 'optimizer' in optim and 'lr' in optim.optimizer:
        optim.optimizer.lr *= lr_mult
    train_cfg = cfg.train_cfg
    if train_cfg.get('type', '').startswith('IterBased') or 'max_iters' in train_cfg:
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                             val_interval=val_interval or iters)
        cfg.param_scheduler = [dict(type='PolyLR', power=0.9, begin=0, end=iters,
                                    eta_min=0.0, by_epoch=False)]
        by_epoch_ckpt = False
    else:
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=iters,
                             val_interval=val_interval or iters)
        # warm up, then the recipes' step decay (x0.1) for the last quarter
        cfg.param_scheduler = [
            dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
            dict(type='MultiStepLR', by_epoch=True, begin=0, end=iters, gamma=0.1,
                 milestones=[max(1, (3 * iters) // 4)])]
        by_epoch_ckpt = True
    hooks = cfg.default_hooks
    hooks.checkpoint = dict(type='CheckpointHook', interval=val_interval or iters,
                            by_epoch=by_epoch_ckpt, max_keep_ckpts=1)
    hooks.logger = dict(type='LoggerHook', interval=5)
    if 'visualization' in hooks:
        hooks.visualization.draw = False
    cfg.pop('custom_hooks', None)  # EMA etc. are for long schedules
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=16)
    cfg.randomness = dict(seed=0)
    if not validate:
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    return cfg


def _keep_all_detections(model: ConfigDict) -> None:
    """Score threshold 0 in every test_cfg: after a few iterations every score is below mmdet's
    0.05, and COCOeval needs detections to score (it ranks them all, so this is its protocol)."""
    for key, value in model.items():
        if isinstance(value, dict):
            if key == 'test_cfg' or key in ('rcnn', 'rpn'):
                if 'score_thr' in value:
                    value['score_thr'] = 0.0
            _keep_all_detections(value)


def _set_num_classes(model: ConfigDict, num_classes: int) -> None:
    """Set ``num_classes`` in every head of a detector config."""
    for value in model.values():
        if isinstance(value, dict):
            if 'num_classes' in value:
                value['num_classes'] = num_classes
            _set_num_classes(value, num_classes)
