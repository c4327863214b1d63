"""Part 3 of the GPU check: ``tools/train.py --amp`` for a few iterations of shipped configs on
generated mini datasets; the logged losses must be finite."""
import glob
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Dict, List, Tuple

import torch

from .common import log, md_table

# part 3: (config, mini dataset, mini_config overrides), as tests/e2e/cases.py shortens them.
# The mmseg run is Semantic FPN: its FPNHead and FPN neck are ConvModules and bilinear resizing,
# no mmcv op (UperNet's PPM would be fine too; heads such as PointRend's call mmcv.ops).
TRAIN_RUNS: Dict[str, Tuple[str, str, dict]] = {
    'mmpretrain': ('configs/bvit/bvit-tiny_4xb256_in1k.py', 'imagenet',
                   dict(scale=(128, 110), crop=(96, 96), batch_size=8)),
    'mmseg': ('configs/fcvit/fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py', 'ade20k',
              dict(scale=(256, 128), crop=(128, 128), batch_size=2)),
}


def _losses(work_dir: str, log_text: str) -> Tuple[List[float], str]:
    """The logged ``loss`` values and where they were read: mmengine's scalars.json, else the
    text log."""
    values = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    record = json.loads(line)
                    if 'loss' in record and 'iter' in record:
                        values.append(float(record['loss']))
    if values:
        return values, 'scalars.json'
    return [float(v) for v in re.findall(r'\sloss: (\S+?)\s', log_text)], 'text log'


def _mini_set(kind: str, root: str, iters: int, batch: int) -> Tuple[str, int]:
    """Generate a mini dataset; returns its root and the schedule length for ``iters``
    iterations (iterations for iteration-based configs, epochs for epoch-based ones)."""
    from visattn_mm.testing import mini_datasets
    if kind == 'imagenet':  # epoch-based: enough epochs of ceil(N / batch) iterations
        mini_datasets.make_imagenet(root, seed=0, num_train=8, num_val=2)
        with open(osp.join(root, 'meta', 'train.txt')) as f:
            num = sum(1 for line in f if line.strip())
        return root, math.ceil(iters / math.ceil(num / batch))
    mini_datasets.make_ade20k(root, seed=0, num_train=8, num_val=4)
    return root, iters


def train_runs(device: torch.device, iters: int, timeout: int, checkout: str
               ) -> Tuple[str, bool]:
    """Part 3: a few AMP iterations of each :data:`TRAIN_RUNS` config with tools/train.py, both
    found in ``checkout`` (the folder that holds configs/ and tools/)."""
    from visattn_mm.testing.mini_config import make_mini_config
    rows, all_ok = [], True
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (checkout, os.environ.get('PYTHONPATH')) if p))
    if device.type == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''  # the Runner picks CUDA whenever it sees one
    with tempfile.TemporaryDirectory(prefix='gpu_check_') as tmp:
        for toolbox, (config, kind, overrides) in TRAIN_RUNS.items():
            t0 = time.perf_counter()
            losses, source, amp, problem = [], '', '-', None
            try:
                data_root, length = _mini_set(kind, osp.join(tmp, kind), iters,
                                              overrides['batch_size'])
                cfg = make_mini_config(osp.join(checkout, config), data_root, iters=length,
                                       validate=False, **overrides)
                cfg.default_hooks.logger.interval = 1  # every iteration's loss is checked
                cfg_path = osp.join(tmp, f'{toolbox}_mini.py')
                cfg.dump(cfg_path)
                work_dir = osp.join(tmp, f'work_{toolbox}')
                cmd = [sys.executable, osp.join(checkout, 'tools', 'train.py'), cfg_path,
                       '--work-dir', work_dir, '--amp']
                log(f'  {" ".join(cmd)}')
                proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                      timeout=timeout, stdin=subprocess.DEVNULL)
                text = proc.stdout + proc.stderr
                amp = ', '.join(sorted(set(re.findall(
                    r'\b(?:visattn_mm\.)?(?:CPU)?AmpOptimWrapper\b', text)))) or 'not seen'
                losses, source = _losses(work_dir, text)
                if proc.returncode != 0:
                    problem = f'exit {proc.returncode}'
                elif not losses:
                    problem = 'no loss logged'
                elif not all(math.isfinite(v) for v in losses):
                    problem = 'non-finite loss'
                elif amp == 'not seen':  # the Runner logs its config: --amp did not take
                    problem = 'no AmpOptimWrapper in the log'
                if problem:
                    log(text[-6000:])
            except subprocess.TimeoutExpired:
                problem = f'timed out after {timeout} s'
            except Exception as err:  # noqa: BLE001
                traceback.print_exc()
                problem = repr(err)[:200]
            all_ok &= problem is None
            shown = (f'{len(losses)} ({source}): first {losses[0]:.4g}, last '
                     f'{losses[-1]:.4g}' if losses else '-')
            rows.append([toolbox, f'`{config}`', iters, amp, shown,
                         f'{time.perf_counter() - t0:.0f}',
                         'pass' if problem is None else f'FAIL: {problem}'])
    headers = ['toolbox', 'config', 'iterations (at least)', 'optimizer wrapper in the log',
               'logged losses', 'wall s', 'result']
    title = (f'### 3. `tools/train.py --amp` on mini datasets ({device.type}; '
             'the Runner picks the device itself)')
    return title + '\n\n' + md_table(headers, rows), all_ok
