"""End to end: `mim train` a few iterations of each shipped config on a generated mini dataset,
then `mim test` the checkpoint and read the real evaluator's metrics from its log.

Marked ``e2e`` (deselect with ``-m "not e2e"``). Each case runs two real processes, as a user
would; the configs are the shipped ones, shortened by visattn_mm.testing.mini_config.
"""
import math
import os.path as osp
import re
import subprocess
import sys

import pytest
from e2e_metrics import CLS, DET, REID, SEM, SEGM

from visattn_mm.datasets.market1501 import convert_market1501
from visattn_mm.testing import mini_datasets
from visattn_mm.testing.mini_config import make_mini_config

pytestmark = pytest.mark.e2e
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MIM = osp.join(osp.dirname(sys.executable), 'mim')

# dataset -> (maker, kwargs): just enough images for one or two batches
MINI_SETS = {
    'coco': (mini_datasets.make_coco, dict(num_train=8, num_val=4)),
    'ade20k': (mini_datasets.make_ade20k_instance, dict(num_train=8, num_val=4)),
    'imagenet': (mini_datasets.make_imagenet, dict(num_train=4, num_val=2)),
    'market1501': (mini_datasets.make_market1501, dict(num_train_ids=6, num_test_ids=4)),
}

# (config, toolbox, mini set, iterations or epochs, mini_config overrides, metrics)
CASES = {
    'pslt-retinanet-coco': ('configs/pslt_retinanet.py', 'mmdet', 'coco', 1,
                            dict(scale=(160, 128), batch_size=4), DET),
    'pslt-maskrcnn-coco': ('configs/pslt/mask-rcnn_pslt-base_fpn_ms-3x_coco.py', 'mmdet', 'coco',
                           1, dict(scale=(160, 128), batch_size=4), SEGM),
    'pslt-maskrcnn-ade20k': ('configs/pslt/mask-rcnn_pslt-base_fpn_ms-3x_ade20k-instance.py',
                             'mmdet', 'ade20k', 1, dict(scale=(160, 128), batch_size=4), SEGM),
    'pslt-fpn-ade20k': ('configs/pslt/fpn_pslt-base_8xb4-40k_ade20k-512x512.py', 'mmseg',
                        'ade20k', 4, dict(scale=(256, 128), crop=(128, 128), batch_size=2), SEM),
    'pslt-reid-market1501': ('configs/pslt/reid_pslt-base_gap_1xb64-24k_market1501.py', 'mmdet',
                             'market1501', 4, dict(), REID),
    'pslt-cls-imagenet': ('configs/pslt/pslt-tiny_8xb128_in1k.py', 'mmpretrain', 'imagenet', 1,
                          dict(scale=(128, 110), crop=(96, 96), batch_size=10), CLS),
    'fcvit-maskrcnn-coco': ('configs/fcvit/mask-rcnn_fcvit-b12_fpn_1x_coco.py', 'mmdet', 'coco',
                            1, dict(scale=(160, 128), batch_size=4), SEGM),
    'fcvit-fpn-ade20k': ('configs/fcvit/fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py', 'mmseg',
                         'ade20k', 4, dict(scale=(256, 128), crop=(128, 128), batch_size=2), SEM),
    'fcvit-reid-market1501': ('configs/fcvit/reid_fcvit-b12_gap_1xb64-24k_market1501.py', 'mmdet',
                              'market1501', 4, dict(), REID),
    'fcvit-cls-imagenet': ('configs/fcvit/fcvit-tiny_8xb128_in1k.py', 'mmpretrain', 'imagenet', 1,
                           dict(scale=(128, 110), crop=(96, 96), batch_size=10), CLS),
}

# each family's cases live in tests/e2e_cases_<family>.py (``CASES``, same tuple layout)
for _family in ('bvit', 'dense'):
    try:
        _module = __import__(f'e2e_cases_{_family}')
    except ModuleNotFoundError as err:
        if err.name != f'e2e_cases_{_family}':
            raise
        continue
    CASES.update(_module.CASES)


@pytest.fixture(scope='session')
def mini_root(tmp_path_factory):
    return tmp_path_factory.mktemp('mini')


def mini_set(mini_root, name: str) -> str:
    """Generate a mini dataset once per session."""
    root = osp.join(str(mini_root), name)
    if not osp.isdir(root):
        maker, kwargs = MINI_SETS[name]
        maker(root, seed=0, **kwargs)
        if name == 'market1501':
            convert_market1501(root)
    return root


def run_mim(*args: str, cwd: str) -> str:
    proc = subprocess.run([MIM, *args], cwd=cwd, capture_output=True, text=True, timeout=1200,
                          stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'mim {" ".join(args)} failed:\n{log[-6000:]}'
    return log


def final_test_metrics(log: str) -> dict:
    """``key: value`` pairs of the final ``(test)`` line of an mmengine log."""
    lines = [line for line in log.splitlines() if '(test)' in line]
    assert lines, f'no test results in the log:\n{log[-3000:]}'
    return {k: float(v) for k, v in re.findall(r'([\w/]+): (-?[\d.]+(?:e-?\d+)?)', lines[-1])}


def train_and_test(case: str, mini_root, tmp_path) -> dict:
    config, toolbox, data, iters, overrides, keys = CASES[case]
    cfg = make_mini_config(osp.join(ROOT, config), mini_set(mini_root, data), iters=iters,
                           validate=False, **overrides)
    cfg_path = str(tmp_path / f'{case}.py')
    cfg.dump(cfg_path)
    work_dir = str(tmp_path / 'work')
    run_mim('train', toolbox, cfg_path, '--work-dir', work_dir, cwd=str(tmp_path))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    assert osp.isfile(checkpoint), checkpoint
    log = run_mim('test', toolbox, cfg_path, '--checkpoint', checkpoint, '--work-dir',
                  str(tmp_path / 'test'), cwd=str(tmp_path))
    metrics = final_test_metrics(log)
    for key in keys:
        assert key in metrics, f'{key} missing from {metrics}'
        assert math.isfinite(metrics[key]) and metrics[key] >= 0, (key, metrics[key])
    return metrics


@pytest.mark.parametrize('case', sorted(CASES))
def test_train_then_test(case, mini_root, tmp_path):
    if not osp.isfile(osp.join(ROOT, CASES[case][0])):
        pytest.fail(f'config {CASES[case][0]} is missing')
    train_and_test(case, mini_root, tmp_path)
