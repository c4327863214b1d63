"""tools/analysis/vs_released.py: our side of the comparison is the released model's size, and the
peak-memory helper it shares with the other tools measures a process's own growth."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'vs_released.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location('vs_released', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('family, released_params', [
    ('pslt', 9_257_302), ('fcvit', 14_701_832), ('bvit', 5_710_948), ('dense', 5_120_824)])
def test_ours_has_the_released_parameter_count(tool, family, released_params, one_thread):
    """(targets.md: the released classifiers' exact counts.)"""
    model = tool.build_ours(family)
    assert sum(p.numel() for p in model.parameters()) == released_params
    x, y = torch.randn(2, 3, 224, 224), torch.randint(0, 1000, (2, ))
    for train in (False, True):
        assert tool.run_step(model, x, y, train) > 0


def test_timm_helpers_stand_in(tool, monkeypatch):
    monkeypatch.setitem(sys.modules, 'timm', None)  # as if timm were not installed
    for name in [n for n in sys.modules if n.startswith('timm.')]:
        monkeypatch.delitem(sys.modules, name)
    tool._timm_helpers()
    from timm.models.layers import DropPath, to_2tuple
    assert to_2tuple(3) == (3, 3)
    drop = DropPath(0.5).train()
    out = drop(torch.ones(2000, 4))
    assert set(out[:, 0].unique().tolist()) == {0., 2.}  # per sample: dropped or scaled by 2
    assert torch.equal(DropPath(0.5).eval()(out), out)
    for name in [n for n in sys.modules if n == 'timm' or n.startswith('timm.')]:
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_no_checkout_is_an_error():
    run = subprocess.run([sys.executable, TOOL], capture_output=True, text=True)
    assert run.returncode == 2 and 'name at least one checkout' in run.stderr


def test_peak_rss_is_this_process_growth():
    """A fresh child measures its own peak, not its parent's (ru_maxrss would)."""
    code = ('import torch; from visattn_mm.utils.benchmarking import peak_rss_mib, reset_peak_rss\n'
            'base = reset_peak_rss(); x = torch.ones(64 * 2**20 // 4); del x\n'
            'print(peak_rss_mib() - base)')
    hold = torch.ones(256 * 2**20 // 4)  # the parent holds 256 MiB more than the child will
    grown = float(subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                                 text=True, cwd=ROOT).stdout.split()[-1])
    del hold
    assert 56 < grown < 200, grown


def test_bad_size_is_an_error():
    run = subprocess.run([sys.executable, TOOL, '--fcvit', '.', '--size', '800x13x3'],
                         capture_output=True, text=True)
    assert run.returncode == 2 and '--size must be HxW' in run.stderr


def test_describe_device_names_the_cpu_and_its_kernels():
    from visattn_mm.utils.benchmarking import describe_device
    text = describe_device('cpu')
    assert torch.backends.cpu.get_cpu_capability() in text
    assert f'{torch.get_num_threads()} threads' in text
