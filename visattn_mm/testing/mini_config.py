"""Turn a full-size config into a short run on a generated mini dataset.

:func:`make_mini_config` returns the shortened config; ``tools/mini_config.py`` writes it::

    python tools/mini_config.py CONFIG --data-root data/mini/coco --out work_dirs/mini.py \
        [--iters 40] [--scale 320 256] [--lr-mult 1.0]

The model, optimiser type and pipelines stay those of CONFIG; what changes is what a few
iterations on a laptop-sized dataset need: the data root (the mini sets use the real datasets'
layout), image scales, batch sizes, worker processes, the schedule length, mixed precision (off:
CPUs have no fp16 training) and pretrained weights (none: the mini sets train from scratch).
The result is an ordinary config file for ``mim train`` / ``mim test``.

``tools/demo.sh`` uses :func:`make_demo_config` (the demo's recipe for the headline PSLT
RetinaNet on mini COCO), :func:`save_initial_checkpoint` (the untrained model, for ``mim test``)
and :func:`demo_report` (the two box APs side by side).
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


def _coco_classes(ann_path: str, annotated_only: bool = False) -> Optional[tuple]:
    """Class names in category-id order from a COCO-style file (None if it is not one);
    ``annotated_only``: only the categories that have an annotation in it."""
    if not osp.isfile(ann_path) or not ann_path.endswith('.json'):
        return None
    with open(ann_path) as f:
        data = json.load(f)
    cats = data.get('categories', [])
    if annotated_only:
        used = {a['category_id'] for a in data.get('annotations', [])}
        cats = [c for c in cats if c['id'] in used]
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
                     val_interval: Optional[int] = None, validate: bool = True,
                     deterministic: bool = False) -> Config:
    """The config of a short run of ``config`` on the mini dataset at ``data_root``.

    ``validate=False`` drops validation from training (``mim test`` still has the test set).
    ``deterministic=True`` asks mmengine for deterministic algorithms
    (``randomness=dict(seed=0, deterministic=True)``, i.e. ``torch.use_deterministic_algorithms``)
    and gives the training sampler its seed explicitly; data loading stays in the main process
    (``num_workers=0``), so no worker seeds are involved. Bit-identical runs also need the same
    number of CPU threads (``OMP_NUM_THREADS``): how a reduction is split over threads changes
    its rounding (``tools/demo.sh`` fixes it).
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
    if deterministic:
        cfg.randomness = dict(seed=0, deterministic=True)
        sampler = cfg.train_dataloader.get('sampler')
        if sampler is not None and sampler.get('type', '').endswith('DefaultSampler'):
            sampler.seed = 0  # otherwise drawn from numpy's (seeded) global generator
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


# --------------------------------------------------------------------------------------------
# The demo's recipe (tools/demo.sh): the headline PSLT RetinaNet on the mini COCO shapes
# --------------------------------------------------------------------------------------------

# The mini COCO set the demo generates (tools/mini_datasets.py coco --num-train ... --size ...):
# 128 training images instead of the default 24 (the time goes into iterations, not images:
# more images are more variety at the same cost), 32 validation images (about 90 boxes instead
# of about 20 on 8 images: a steadier AP), drawn at 128 px (the longest side; the objects are
# 15-50 px, the recipe's anchors start at 32 px on the stride-8 level).
DEMO_DATA = dict(num_train=128, num_val=32, size=128)
# 16 epochs of 32 iterations (batches of 4): 6 minutes of training on 2 cores shared with other
# work (10 with the load near 4). Box AP on the 32 validation images against the length (this
# recipe, on the CPU): 0.44 after 10 epochs and 0.57 after 12 without the step decay; with it
# (after three quarters), 0.57 after 14 epochs and 0.70 after 16.
DEMO_EPOCHS = 16


def make_demo_config(config: str, data_root: str, epochs: int = DEMO_EPOCHS) -> Config:
    """The config ``tools/demo.sh`` trains: :func:`make_mini_config` of ``config`` (the
    headline ``configs/pslt_retinanet.py``) with the demo's choices for the mini COCO set.

    What stays the paper's: the PSLT backbone (its smallest arch, PSLT-tiny, from scratch), the
    RetinaNet neck, head and anchors, AdamW with the recipe's weight decay, multi-scale training
    and the step decay. What is chosen for a few minutes on 2 CPU cores, each with its reason in
    a comment below: the data (``DEMO_DATA``; the images at their own size), the five annotated
    classes only, the learning rate and gradient clipping, the schedule's length, and a
    deterministic run (mmengine's deterministic mode, seeded sampler, no worker processes).
    """
    from visattn_mm.models.backbones.pslt import PSLT

    # the images at their own size (longest side 128: the Resize scale (128, 128) keeps them);
    # the recipe's multi-scale training stays, as (128, 96)..(128, 128). Batches of 4. The
    # anchors stay the recipe's: octave base scale 2 (16-25 px anchors on the stride-8 level,
    # nearer the smallest objects) learnt worse (0.20 box AP against 0.30 after 10 epochs,
    # both with a 100-iteration warm-up)
    cfg = make_mini_config(config, data_root, iters=epochs, scale=(128, 128), batch_size=4,
                           validate=False, deterministic=True)
    model = cfg.model
    if model.backbone.get('type', '').endswith('PSLT'):
        # PSLT-tiny (embed 24: 48/96/192/384 channels), the smallest of the family
        # (configs/pslt/pslt-tiny_8xb128_in1k.py): the same architecture in less time per
        # iteration than PSLT-base on the CPU; no pretrained weights (from scratch)
        model.backbone.arch = 'tiny'
        c0 = PSLT.arch_zoo['tiny']['embed_dims']
        model.neck.in_channels = [c0 * 2 ** (i + 1) for i in range(4)]
    # only the five classes the mini set annotates (the file lists all 80 COCO categories, as
    # the real one does): the head's classifier has 45 output channels instead of 720 (about
    # half the time per iteration at this size), and the AP is the mean over the same five
    # categories either way (COCOeval skips categories without ground truth)
    ann = osp.join(osp.abspath(data_root), 'annotations', 'instances_train2017.json')
    classes = _coco_classes(ann, annotated_only=True)
    if classes:
        for split in ('train', 'test'):
            cfg[f'{split}_dataloader'].dataset.metainfo = dict(classes=classes)
        _set_num_classes(model, len(classes))
    # AdamW at 4x the recipe's 1e-4, with the recipe's weight decay: after 10 epochs 1e-4 gave
    # 0.10 box AP, 4e-4 0.38. Gradients clipped at norm 10. The warm-up (20 iterations) and the
    # step decay (x0.1 for the last quarter) are make_mini_config's. From scratch at this lr the
    # classification branch goes through a spike in the first ~150 iterations (gradient norm up
    # to a few hundred, loss up again) and recovers; a 100-iteration warm-up or Adam's beta2 at
    # 0.99 did not avoid it and ended lower after 10 epochs (0.30 and 0.27 against 0.38)
    cfg.optim_wrapper.optimizer.lr = 4e-4
    cfg.optim_wrapper.clip_grad = dict(max_norm=10, norm_type=2)
    # a log line every 8 iterations and at the end of every epoch (the demo shows those)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=8, ignore_last=False)
    return cfg


# --------------------------------------------------------------------------------------------
# The untrained model: its checkpoint, for `mim test` beside the trained one
# --------------------------------------------------------------------------------------------

class _Stop(Exception):
    pass


def save_initial_checkpoint(cfg: Config, path: str) -> str:
    """Write the weights a training run of ``cfg`` starts from, as an mmengine checkpoint.

    The run is a real one: mmengine's Runner builds everything from ``cfg`` under its seed,
    initialises the weights (``init_weights``, e.g. the focal-loss prior of a RetinaNet head) and
    loads what the config asks to load, and the checkpoint is saved at the ``before_train`` hook,
    just before the first iteration. ``mim test`` on it scores the same model untrained.
    """
    import tempfile
    import uuid

    import torch
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    path = osp.abspath(path)

    class SaveAndStop(Hook):
        def before_train(self, runner) -> None:
            # meta: epoch and iteration 0 (by default it counts the epoch as finished)
            runner.save_checkpoint(osp.dirname(path), osp.basename(path), save_optimizer=False,
                                   save_param_scheduler=False,
                                   meta=dict(epoch=runner.epoch, iter=runner.iter))
            raise _Stop

    cfg = cfg.copy()
    deterministic = torch.are_deterministic_algorithms_enabled()
    with tempfile.TemporaryDirectory() as work_dir:
        cfg.work_dir = work_dir
        if cfg.get('visualizer'):  # a visualizer is global by name: not the one of a later run
            cfg.visualizer.name = f'initial_checkpoint_{uuid.uuid4().hex}'
        runner = Runner.from_cfg(cfg)
        runner.register_hook(SaveAndStop(), priority='LOWEST')
        try:
            runner.train()
        except _Stop:
            pass
        else:  # pragma: no cover - train() always calls before_train
            raise RuntimeError('training ended before its first iteration')
        finally:  # randomness.deterministic switches it on for the whole process
            torch.use_deterministic_algorithms(deterministic)
    return path


# --------------------------------------------------------------------------------------------
# Reading the box AP of `mim test` logs (tools/demo.sh)
# --------------------------------------------------------------------------------------------

AP_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75')


def coco_test_metrics(log: str) -> dict:
    """The ``coco/<key>: value`` pairs of the last ``Epoch(test)`` line of an mmengine log
    (``mim test mmdet`` output); empty if there is none."""
    import re
    lines = [line for line in log.splitlines() if 'Epoch(test)' in line]
    if not lines:
        return {}
    return {k: float(v) for k, v in re.findall(r'coco/(\w+): (-?[\d.]+)', lines[-1])}


def demo_report(untrained_log: str, trained_log: str, what: str = 'trained') -> int:
    """Print the box AP of the untrained and the trained model side by side (read from the two
    ``mim test`` logs); return 0 if the trained one is better, 1 otherwise (the shapes are
    learnable: a run that does not beat its own starting point learned nothing)."""
    rows = []
    for name, log_path in (('untrained', untrained_log), ('trained', trained_log)):
        with open(log_path) as f:
            metrics = coco_test_metrics(f.read())
        if 'bbox_mAP' not in metrics:
            print(f'[demo] no box AP in {log_path}')
            return 1
        rows.append((name, metrics))
    print('[demo] COCO box AP on the mini COCO val set   AP     AP50   AP75')
    for name, metrics in rows:
        values = '  '.join(f'{metrics.get(k, float("nan")):.3f}' for k in AP_KEYS)
        label = 'untrained (initialised, no training)' if name == 'untrained' else what
        print(f'[demo]   {label:<38} {values}')
    untrained, trained = (m['bbox_mAP'] for _, m in rows)
    if trained <= untrained:
        print(f'[demo] the trained model ({trained:.3f}) is no better than the untrained one '
              f'({untrained:.3f}): it learned nothing')
        return 1
    return 0
