"""Train each family's classifier briefly on the mini classification set, check that it learned,
and draw its mechanism beside the same picture with the random weights it started from.

    python tools/analysis/draw_pictures.py [--families pslt fcvit bvit dense]
        [--out docs/pictures] [--work-dir work_dirs/pictures] [--iters-scale 1.0]

For each family (:data:`FAMILIES`):

1. the mini ImageNet-format set of ``visattn_mm.testing.mini_datasets.make_imagenet`` (five
   classes, one coloured shape each on a noisy plain background; 40 training and 10 validation
   images per class at 128x128) is written once to ``<work-dir>/data/imagenet``;
2. the family's ImageNet config (``configs/<family>/...``) is turned into a small-data recipe
   (:func:`picture_config`): a smaller arch of the same backbone (stated in :data:`FAMILIES` and
   in the written config), five classes, no Mixup / CutMix / RandAugment (a plain resize to
   128x128 and a horizontal flip), AdamW with a short warm-up and a cosine decay over
   ``iters`` iterations of 16 images. The config is written to
   ``<work-dir>/<family>/config.py``;
3. mmengine's Runner trains it in this process from the seeded random initialisation; the
   initial weights and the trained ones are saved as ``random.pth`` and ``trained.pth`` beside
   the config (``{'state_dict': ...}``, loadable by ``tools/visualize.py CONFIG CHECKPOINT
   IMAGE``), and the validation top-1 of both is measured with mmpretrain's ``Accuracy`` over
   the 50 validation images (chance: 20 %);
4. the family's picture is drawn on three validation images (a circle, a triangle and a
   cross): per image one row with the random weights and one with the trained weights, as
   ``<out>/<family>_trained_vs_random.png`` (PNG with a palette, kept under 300 KB). The query
   of the query-based kinds (PSLT) is the centre of the shape (the centroid of the saturated
   pixels: the backgrounds are grey-ish). Each map is min-max coloured on its own, which
   stretches a nearly flat map into loud noise, so each panel title also says how far the
   map is from saying nothing: ``xN`` for attention rows (largest weight over mean weight;
   x1.0 is uniform) and ``cN`` for FCViT's similarity maps (correlation with the shape).
   The same statistics averaged over the images (``shape_statistic`` of
   :mod:`visattn_mm.visualization.trained_vs_random`, which draws the picture: for attention
   also the weight that falls on the shape against what a uniform row would put there) are
   printed. DenseDeiT's mixing weights do not depend on the image: its picture shows the
   weight matrices before and after training and their difference.

The accuracies, losses, statistics and times are printed and written to
``<work-dir>/summary.json``. Nothing but the PNGs goes to ``--out``. The four families take
about 5 minutes of CPU time (one torch thread, see ``--threads``): 10-15 minutes of wall time
on a shared 2-core machine whose other jobs keep its load near 8. ``--draw-only`` redraws the
pictures from an earlier run's checkpoints in about a minute.
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import torch  # noqa: E402

SIZE = 128  # image side (the mini set is written at this size, and the models test at it)
NUM_TRAIN, NUM_VAL = 40, 10  # images per class
BATCH = 16

# The picture of each family: its ImageNet config, the smaller arch trained here (the same
# backbone class), the kinds drawn, the iterations and learning rate of the short run.
_VIT = dict(embed_dims=96, num_layers=4, num_heads=3, head_dims=32, feedforward_channels=192)
FAMILIES: Dict[str, dict] = {
    'pslt': dict(
        config='configs/pslt/pslt-tiny_8xb128_in1k.py',
        # C0 12 (channels 24/48/96/192), 2+2 MV2 blocks, 3 + 1 ladder blocks, windows of 4
        # (stage 3 is an 8x8 map at 128 px: four windows, shifts 0, -2, +2)
        backbone=dict(arch=dict(embed_dims=12, depths=(2, 2, 3, 1), num_heads=(2, 4),
                                window_size=4), drop_path_rate=0.0),
        head_channels=192, kinds=('branch', 'ladder'), iters=400, lr=2e-3),
    'fcvit': dict(
        config='configs/fcvit/fcvit-tiny_8xb128_in1k.py',
        # one block per stage but two in stage 3, widths 32/64/128/192, MLP ratio 4
        backbone=dict(arch=dict(depths=[1, 1, 2, 1], widths=[32, 64, 128, 192],
                                mlp_ratios=[4, 4, 4, 4]), drop_path_rate=0.0),
        head_channels=192, kinds=('context',), iters=300, lr=2e-3),
    'bvit': dict(
        config='configs/bvit/bvit-tiny_4xb256_in1k.py',
        # 4 layers of C 96 (3 heads of 32), patches of 8 px: a 16x16 grid at 128 px
        backbone=dict(arch=_VIT, img_size=SIZE, patch_size=8),
        head_channels=96, kinds=('broad',), iters=400, lr=1e-3),
    'dense': dict(
        config='configs/dense/dense-deit-tiny_4xb256_in1k.py',
        # the same small ViT with dense attention (its 4 x 4 mixing weights)
        backbone=dict(arch=_VIT, num_heads=3, img_size=SIZE, patch_size=8),
        head_channels=96, kinds=('dense_weights',), iters=400, lr=1e-3),
}
# (validation image classes drawn: circle, triangle, cross; see IMAGENET_MINI_SPEC)
DRAW_CLASSES = (0, 1, 4)


def make_data(work_dir: str, seed: int = 0) -> str:
    """The mini classification set under ``<work_dir>/data/imagenet`` (written once)."""
    from visattn_mm.testing.mini_datasets import make_imagenet
    root = osp.join(work_dir, 'data', 'imagenet')
    if not osp.isfile(osp.join(root, 'meta', 'val.txt')):
        make_imagenet(root, seed=seed, num_train=NUM_TRAIN, num_val=NUM_VAL, size=(SIZE, SIZE))
    return root


def picture_config(family: str, data_root: str, work_dir: str, iters: Optional[int] = None):
    """The short-run config of a family (see the module docstring), as an mmengine Config."""
    from mmengine.config import Config

    from visattn_mm.testing.mini_datasets import IMAGENET_MINI_CLASSES
    spec = FAMILIES[family]
    iters = iters or spec['iters']
    cfg = Config.fromfile(osp.join(ROOT, spec['config']))
    num_classes = len(IMAGENET_MINI_CLASSES)

    model = cfg.model
    model.backbone.update(copy.deepcopy(spec['backbone']))
    model.backbone.pop('init_cfg', None)
    model.pop('train_cfg', None)  # no Mixup / CutMix
    model.head.num_classes = num_classes
    model.head.in_channels = spec['head_channels']
    model.head.loss = dict(type='CrossEntropyLoss', loss_weight=1.0)  # (replaced whole)
    model.data_preprocessor = dict(cfg.get('data_preprocessor', {}), num_classes=num_classes)

    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(SIZE, SIZE)),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs')]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(SIZE, SIZE)),
        dict(type='PackInputs')]

    def loader(split: str, pipeline: list, shuffle: bool) -> dict:
        sampler = 'InfiniteSampler' if split == 'train' else 'DefaultSampler'
        return dict(batch_size=BATCH, num_workers=0, persistent_workers=False,
                    sampler=dict(type=sampler, shuffle=shuffle),
                    dataset=dict(type='ImageNet', data_root=data_root, split=split,
                                 metainfo=dict(classes=IMAGENET_MINI_CLASSES),
                                 pipeline=pipeline))

    cfg.train_dataloader = loader('train', train_pipeline, True)
    cfg.val_dataloader = loader('val', test_pipeline, False)
    cfg.test_dataloader = loader('val', test_pipeline, False)
    cfg.val_evaluator = cfg.test_evaluator = dict(type='Accuracy', topk=(1,))
    cfg.test_pipeline = test_pipeline

    optim = cfg.optim_wrapper
    optim.type = 'OptimWrapper'  # (no fp16 on the CPU)
    optim.pop('loss_scale', None)
    optim.optimizer.lr = spec['lr']
    warmup = max(1, iters // 10)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=warmup),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup, end=iters,
             eta_min=spec['lr'] * 0.01)]
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters, val_interval=iters)
    cfg.val_cfg = dict(type='ValLoop')
    cfg.test_cfg = dict(type='TestLoop')
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=25)
    cfg.default_hooks.checkpoint = None  # random.pth and trained.pth are written instead
    cfg.default_hooks.visualization = dict(type='VisualizationHook', enable=False)
    cfg.pop('custom_hooks', None)
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=BATCH)
    cfg.randomness = dict(seed=0)
    cfg.work_dir = osp.join(work_dir, family)
    cfg.experiment_name = f'pictures_{family}'
    cfg.log_level = 'WARNING'
    return cfg


def _save_weights(model: torch.nn.Module, path: str, note: str) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(note=note)), path)


def train_family(family: str, data_root: str, work_dir: str, iters: Optional[int] = None
                 ) -> dict:
    """Train a family's picture config with mmengine's Runner; save ``random.pth`` (the seeded
    initialisation, captured before the first step) and ``trained.pth``; measure both.

    Returns:
        dict: ``config``, ``random`` and ``trained`` (checkpoint paths), ``top1_random``,
        ``top1_trained`` (mini validation top-1, %), ``losses`` (first and last logged mean
        training loss), ``iters``, ``train_s`` (seconds of training).
    """
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    cfg = picture_config(family, data_root, work_dir, iters)
    os.makedirs(cfg.work_dir, exist_ok=True)
    config_path = osp.join(cfg.work_dir, 'config.py')
    cfg.dump(config_path)
    random_path = osp.join(cfg.work_dir, 'random.pth')
    trained_path = osp.join(cfg.work_dir, 'trained.pth')
    losses: List[float] = []

    class Record(Hook):
        """Save the initial weights before the first step; keep every training loss."""
        priority = 'VERY_LOW'

        def before_train(self, runner) -> None:
            _save_weights(runner.model, random_path, f'{family}: random initialisation')

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            losses.append(float(outputs['loss'].detach()))

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Record())
    start, cpu = time.perf_counter(), time.process_time()
    runner.train()
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu
    _save_weights(runner.model, trained_path, f'{family}: trained {cfg.train_cfg.max_iters} '
                                              'iterations on the mini set')
    top1_trained = float(runner.val_loop.run()['accuracy/top1'])
    trained_state = copy.deepcopy(runner.model.state_dict())
    runner.model.load_state_dict(torch.load(random_path, map_location='cpu')['state_dict'])
    top1_random = float(runner.val_loop.run()['accuracy/top1'])
    runner.model.load_state_dict(trained_state)
    first = float(np.mean(losses[:10]))
    last = float(np.mean(losses[-10:]))
    return dict(config=config_path, random=random_path, trained=trained_path,
                top1_random=top1_random, top1_trained=top1_trained,
                loss_first10=first, loss_last10=last, iters=cfg.train_cfg.max_iters,
                train_s=train_s, train_cpu_s=train_cpu_s)


def draw_family(family: str, result: dict, data_root: str, out: str) -> Tuple[str, List[str]]:
    """The family's trained-vs-random picture as ``<out>/<family>_trained_vs_random.png`` (see
    :func:`~visattn_mm.visualization.trained_vs_random.draw_trained_vs_random`, which also puts
    the shape statistics into ``result['shape_stats']``).

    Returns:
        tuple[str, list[str]]: the PNG path and lines of what the models predicted and how
        much their maps are about the shape.
    """
    from visattn_mm.visualization.trained_vs_random import draw_trained_vs_random
    spec = FAMILIES[family]
    path = osp.join(out, f'{family}_trained_vs_random.png')
    notes = draw_trained_vs_random(result, data_root, path, spec['kinds'], spec['backbone']['arch'],
                                   SIZE, BATCH, DRAW_CLASSES)
    return path, notes


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--families', nargs='+', choices=sorted(FAMILIES), default=list(FAMILIES))
    parser.add_argument('--out', default=osp.join(ROOT, 'docs', 'pictures'),
                        help='folder of the PNGs (default: docs/pictures)')
    parser.add_argument('--work-dir', default=osp.join(ROOT, 'work_dirs', 'pictures'),
                        help='data, configs, checkpoints and logs (default: work_dirs/pictures)')
    parser.add_argument('--iters-scale', type=float, default=1.0,
                        help='multiply every family\'s iterations (e.g. 0.1 for a smoke run)')
    parser.add_argument('--draw-only', action='store_true',
                        help='no training: redraw from the checkpoints and accuracies of an '
                             'earlier run in --work-dir (its summary.json)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (default 1: these small models gain little from '
                             'more, and on a shared 2-core machine two threads waiting on '
                             'each other made a step several times slower)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    total, total_cpu = time.perf_counter(), time.process_time()
    data_root = make_data(args.work_dir)
    summary = osp.join(args.work_dir, 'summary.json')
    earlier = {}
    if args.draw_only:
        if not osp.isfile(summary):
            parser.error(f'--draw-only needs an earlier run: {summary} does not exist')
        with open(summary) as f:
            earlier = {r['family']: r for r in json.load(f)['results']}
        missing = sorted(set(args.families) - set(earlier))
        if missing:
            parser.error(f'{summary} has no run of {missing}')
    results = []
    for family in args.families:
        start = time.perf_counter()
        iters = max(2, round(FAMILIES[family]['iters'] * args.iters_scale))
        res = earlier.get(family) or train_family(family, data_root, args.work_dir, iters)
        draw_start = time.perf_counter()
        res['picture'], res['notes'] = draw_family(family, res, data_root, args.out)
        res['draw_s'] = time.perf_counter() - draw_start
        res['family_s'] = time.perf_counter() - start
        res['family'] = family
        results.append(res)
        print(f"{family}: mini top-1 random {res['top1_random']:.1f} % -> trained "
              f"{res['top1_trained']:.1f} % ({res['iters']} iterations, loss "
              f"{res['loss_first10']:.3f} -> {res['loss_last10']:.3f}, train "
              f"{res['train_s']:.0f} s ({res['train_cpu_s']:.0f} s CPU), draw "
              f"{res['draw_s']:.0f} s); {res['picture']}",
              flush=True)
        for note in res['notes']:
            print('   ', note)
    total, total_cpu = time.perf_counter() - total, time.process_time() - total_cpu
    print(f'total {total:.0f} s ({total_cpu:.0f} s of CPU time)')
    if not args.draw_only:  # (a redraw keeps the times of the run it drew)
        with open(summary, 'w') as f:
            json.dump(dict(results=results, total_s=total, total_cpu_s=total_cpu), f, indent=1)
    return results


if __name__ == '__main__':
    main()
