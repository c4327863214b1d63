"""No default setting crashes: every backbone through frozen stages, ``norm_eval``, ``with_cp``,
train and eval mode, autograd on and off, in a training step (forward, backward, SGD step).

Each backbone runs its settings in a child process, so that a crash (a segfault in a kernel,
as torch's CPU GroupNorm backward gave on a channels-last frozen-stem map) fails that
backbone's case, naming the setting, instead of killing the suite.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from small_backbones import CASES

HERE = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))  # tests/

# (name, constructor arguments, train mode, autograd)
SETTINGS = [
    ('default', {}, True, True),
    ('frozen_stages=0', dict(frozen_stages=0), True, True),
    ('frozen_stages=1', dict(frozen_stages=1), True, True),
    ('norm_eval', dict(norm_eval=True), True, True),
    ('with_cp', dict(with_cp=True), True, True),
    ('with_cp, eval, grad', dict(with_cp=True), False, True),  # frozen-BN fine-tuning
    ('frozen_stages=1, with_cp, norm_eval', dict(frozen_stages=1, with_cp=True,
                                                 norm_eval=True), True, True),
    ('eval, grad', {}, False, True),
    ('train, no grad', {}, True, False),
    ('eval, no grad', {}, False, False),
]

CHILD = r'''
import json, sys
import torch
sys.path.insert(0, {here!r})
from small_backbones import CASES, build
name, settings = {name!r}, json.loads({settings!r})
torch.set_num_threads(1)
H, W = CASES[name][1]
for label, kwargs, train, grad in settings:
    print('START', label, flush=True)
    model = build(name, **kwargs).train(train)
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optim = torch.optim.SGD(trainable, lr=0.1)
    x = torch.randn(2, 3, H, W)
    with torch.set_grad_enabled(grad):
        outs = model(x)
        assert all(torch.isfinite(o).all() for o in outs), 'non-finite output'
        if grad:
            sum(o.float().square().mean() for o in outs).backward()
            optim.step()
    if grad and train:  # every trainable parameter that took part moved; frozen ones stay
        moved = sum(not torch.equal(a, p) for a, p in zip(before, trainable))
        assert moved > 0, 'no parameter changed in a training step'
    if kwargs.get('frozen_stages', -1) >= 0:
        frozen = [p for p in model.parameters() if not p.requires_grad]
        assert frozen and all(p.grad is None for p in frozen), 'a frozen parameter got a grad'
    print('OK', label, flush=True)
'''


@pytest.mark.parametrize('name', sorted(CASES))
def test_every_setting_runs_a_training_step(name):
    script = CHILD.format(here=HERE, name=name, settings=json.dumps(SETTINGS))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          env=env, timeout=600)
    started = [line[6:] for line in proc.stdout.splitlines() if line.startswith('START ')]
    done = [line[3:] for line in proc.stdout.splitlines() if line.startswith('OK ')]
    assert proc.returncode == 0, (
        f'{name} failed in setting {started[-1] if started else "(building)"!r} with exit code '
        f'{proc.returncode} (negative: killed by a signal)\n{proc.stderr[-3000:]}')
    assert done == [s[0] for s in SETTINGS]
