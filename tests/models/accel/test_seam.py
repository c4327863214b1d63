"""The seam itself: the model files know nothing of it, forms are chosen on mode changes and
moves (not per call), the switch turns them off, and every family's outputs stay."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from small_backbones import CASES, build
from visattn_mm.models import accel

BACKBONES = Path(accel.__file__).parents[1] / 'backbones'
# a runtime mode or a device decides; or a fast path is called by name
FORBIDDEN = re.compile(r'is_grad_enabled|is_tracing\(|is_compiling|autocast|dispatch_mode|'
                       r'device\.type|\.is_cuda|onednn|mkldnn|packed_linear|Form\b')


@pytest.mark.parametrize('path', sorted(BACKBONES.glob('*.py')), ids=lambda p: p.name)
def test_model_files_branch_on_no_mode_and_call_no_fast_path(path):
    code = '\n'.join(line.split('#')[0] for line in path.read_text().splitlines())
    assert not FORBIDDEN.findall(code)
    uses = set(re.findall(r'accel\.(\w+)', code))
    assert uses <= {'select', 'channels_last_on'}  # base.py: when to choose, and the layout


def test_forms_are_chosen_on_mode_changes_not_per_call(monkeypatch, one_thread):
    model = build('PSLT').eval()
    calls = []
    monkeypatch.setattr(accel, 'select', lambda root, select=accel.select: (
        calls.append(root), select(root))[1])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model(x)
        model(x)
    assert calls == []
    model.train()
    model.eval()
    assert calls == [model, model]


@pytest.mark.parametrize('name', sorted(CASES))
def test_every_family_with_forms_equals_it_without(name, one_thread):
    """Eval outputs with the forms equal the plain modules' (random BN statistics, so that a
    wrong fold shows), and a training step runs with the training forms in place."""
    model = build(name)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-.5, .5)
            m.running_var.uniform_(.5, 2.)
    model.eval()
    x = torch.randn(2, 3, *CASES[name][1])
    with torch.no_grad():
        fast = model(x)
        with accel.disabled():
            plain = model(x)
    for a, b in zip(fast, plain):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    model.train()
    sum(out.square().mean() for out in model(x)).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_the_environment_switch():
    env = dict(os.environ, VISATTN_ACCEL='0')
    code = ('from visattn_mm.models import accel, backbones\n'
            'm = backbones.PSLT(arch="tiny").eval()\n'
            'assert not accel.enabled() and accel.form_of(m.stages[0].blocks[0].expand)')
    subprocess.run([sys.executable, '-c', code], env=env, check=True, timeout=300)


def test_packed_and_folded_weights_outlive_mode_switches(monkeypatch, one_thread):
    """A train step and back to eval repack nothing (the weights did not change); a changed
    weight is repacked; copies start without the packed tensors."""
    import copy
    mkldnn, packs = torch.ops.mkldnn, []

    class Counting:
        def _reorder_linear_weight(self, *args):
            packs.append(1)
            return mkldnn._reorder_linear_weight(*args)

        def __getattr__(self, name):
            return getattr(mkldnn, name)

    monkeypatch.setattr(torch.ops, 'mkldnn', Counting())
    model = build('BViT').eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        model(x)
    first = len(packs)
    assert first > 0
    model.train()
    model(x)
    model.eval()
    with torch.no_grad():
        model(x)
        assert len(packs) == first
        model.layers[0].attn.qkv.weight.mul_(2)
        model(x)
        assert len(packs) == first + 1
        clone = copy.deepcopy(model)
        torch.testing.assert_close(clone(x), model(x))


def test_a_model_with_forms_is_freed_without_the_cycle_collector(one_thread):
    """Forms hold their module weakly: dropping the last reference frees the model at once."""
    import gc
    import weakref
    gc.disable()
    try:
        model = build('PSLT').eval()
        assert {accel.form_of(m) for m in model.modules()} - {None}
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
        ref = weakref.ref(model)
        del model
        assert ref() is None
    finally:
        gc.enable()
