"""End-to-end runs that fail when the model does not learn: one per toolbox (mmpretrain
classification, mmdet detection, mmseg semantic segmentation, mmdet re-ID), each a shipped
config with a small arch on a learnable mini set (every category one shape in one colour).

Each case (tests/e2e/cases.py, ``LEARNING``) scores the same config twice with its real
evaluator: untrained (weights initialised as ``runner.train()`` initialises them) and after a
short training run. It asserts that

- the training loss falls: the mean of the last 5 logged losses is at most ``loss_ratio`` times
  the mean of the first 5 (read from the Runner's message hub, ``train/loss``), and
- the metric beats the untrained model's by ``margin``.

Measured on an AMD EPYC (1 thread; training seeds 0 / 1 / 2; untrained -> trained; mean loss of
the first 5 -> the last 5 iterations; the margins leave room for other CPUs' rounding):

- bvit-cls-imagenet: top-1 0 -> 80 / 75 / 75; loss 6.72 -> 2.25-2.31 (ratio 0.34)
- pslt-retinanet-coco: bbox AP50 0 -> 0.295 / 0.219 / 0.369; loss 1.86 -> 0.65-0.80 (0.35-0.43)
- fcvit-fpn-ade20k: mIoU 0.08 / 0 / 0 -> 27.2 / 28.1 / 32.7; loss 4.68-4.83 -> 3.02-3.12 (0.65)
- fcvit-reid-market1501: mAP 0.46 / 0.36 / 0.36 -> 0.92 / 0.77 / 0.88; loss 2.76-2.81 ->
  1.81-1.82 (0.64-0.66)

With lr 0 (``lr_mult=0``, seed 0) every case fails both assertions: loss ratios 1.00 / 0.99 /
0.99 / 1.00, trained top-1 0, AP50 0, mIoU 0.01, mAP 0.32 (below the untrained 0.46: the
BatchNorm statistics still move). Each case takes 5-15 s of one core.
"""
import os.path as osp

import pytest
from cases import LEARNING, MINI_SETS
from harness import ROOT, check_metrics, run_in_process, session_mini_set, set_options

from visattn_mm.testing.mini_config import make_mini_config

pytestmark = pytest.mark.e2e
FIRST_LAST = 5  # losses averaged at each end of the run
TASK_METRICS = {
    'imagenet': ('accuracy/top1', ),
    'coco': ('coco/bbox_mAP', 'coco/bbox_mAP_50'),
    'ade20k': ('aAcc', 'mIoU'),
    'market1501': ('market1501/mAP', 'market1501/R1'),
}


def mean(values):
    return sum(values) / len(values)


@pytest.mark.parametrize('name', sorted(LEARNING))
def test_training_beats_the_untrained_model(name, tmp_path_factory, tmp_path):
    case = LEARNING[name]
    assert case.data in MINI_SETS
    root = session_mini_set(tmp_path_factory, case.data, **case.sizes)
    cfg = make_mini_config(osp.join(ROOT, case.config), root, iters=case.iters, validate=False,
                           **case.overrides)
    set_options(cfg, case.model)

    untrained = run_in_process(cfg, str(tmp_path / 'untrained'), f'{name}-untrained',
                               train=False)
    trained = run_in_process(cfg, str(tmp_path / 'trained'), name)
    for run in (untrained, trained):
        check_metrics(run.metrics, TASK_METRICS[case.data] + (case.metric, ))

    losses = trained.losses
    assert len(losses) >= 4 * FIRST_LAST, f'{len(losses)} training iterations logged'
    first, last = mean(losses[:FIRST_LAST]), mean(losses[-FIRST_LAST:])
    before, after = untrained.metrics[case.metric], trained.metrics[case.metric]
    summary = (f'{name}: {case.metric} untrained {before:.4g} -> trained {after:.4g}; loss '
               f'first {FIRST_LAST} {first:.4g} -> last {FIRST_LAST} {last:.4g} '
               f'({len(losses)} iterations)')
    print(summary)
    assert last <= case.loss_ratio * first, f'the loss did not fall enough: {summary}'
    assert after >= before + case.margin, \
        f'{case.metric} did not beat the untrained model by {case.margin}: {summary}'
