"""tools/analysis/vs_released.py: our side of the comparison is the released model's size, and the
peak-memory helper it shares with the other tools measures a process's own growth."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch

from visattn_mm.compat import FLOPS_UNDER_INFERENCE_MODE

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
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
    code = ('import torch\n'
            'from visattn_mm.utils.benchmarking import peak_rss_growth_mib, reset_peak_rss\n'
            'base = reset_peak_rss(); x = torch.ones(64 * 2**20 // 4); del x\n'
            'print(peak_rss_growth_mib(base))')
    hold = torch.ones(256 * 2**20 // 4)  # the parent holds 256 MiB more than the child will
    grown = float(subprocess.run([sys.executable, '-c', code], check=True, capture_output=True,
                                 text=True, cwd=ROOT).stdout.split()[-1])
    del hold
    assert 56 < grown < 200, grown


def test_peak_rss_growth_is_never_negative():
    """The kernel's RSS counts are approximate: a base read above the later peak is no growth
    (CI once read -0.06 MiB for a model's peak)."""
    from visattn_mm.utils.benchmarking import peak_rss_growth_mib, reset_peak_rss
    assert peak_rss_growth_mib(reset_peak_rss() + 0.25) == 0.


def test_bad_size_is_an_error():
    run = subprocess.run([sys.executable, TOOL, '--fcvit', '.', '--size', '800x13x3'],
                         capture_output=True, text=True)
    assert run.returncode == 2 and '--size must be HxW' in run.stderr


def test_describe_device_names_the_cpu_and_its_kernels():
    from visattn_mm.utils.benchmarking import describe_device
    text = describe_device('cpu')
    assert torch.backends.cpu.get_cpu_capability() in text
    assert f'{torch.get_num_threads()} threads' in text


def test_training_step_macs_count_the_backward():
    """Forward and backward both counted, the CPU fused attention's backward with its formula."""
    from visattn_mm.utils.benchmarking import count_gmacs
    q, k, v = (torch.randn(1, 2, 50, 16, requires_grad=True) for _ in range(3))

    def step(q, k, v):
        torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()

    forward = 2 * 2 * 50 * 50 * (16 + 16)
    backward = 2 * 2 * 50 * 50 * (3 * 16 + 2 * 16)
    assert count_gmacs(step, q, k, v, grad=True) * 2e9 == forward + backward
    linear = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(8, 64)
    macs = 8 * 64 * 32
    assert count_gmacs(linear, x) * 1e9 == macs
    assert count_gmacs(lambda x: linear(x).sum().backward(), x, grad=True) * 1e9 == 2 * macs


@pytest.mark.skipif(not FLOPS_UNDER_INFERENCE_MODE,
                    reason="torch < 2.2's FlopCounterMode counts no MACs under inference_mode")
def test_bound_is_released_time_over_ours_macs_at_the_matmul_rate(tool):
    from visattn_mm.utils.benchmarking import matmul_gmacs_per_s
    assert matmul_gmacs_per_s(n=256, repeats=2) > 0
    models = {name: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000))
              for name in ('released', 'ours')}
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 1000, (4, ))
    row = dict(eval=dict(released_imgs_per_s=400.), train=dict(released_imgs_per_s=100.))
    out = tool.bound(models, x, y, row, matmul_rate=10.)
    macs = 4 * 192 * 1000 / 1e9  # the Linear; its backward also computes the weight's gradient
    assert out['eval']['ours_gmacs'] == out['eval']['released_gmacs'] == pytest.approx(macs)
    assert out['train']['ours_gmacs'] == pytest.approx(2 * macs)  # the input needs no gradient
    assert out['eval']['max_ratio'] == pytest.approx((4 / 400.) / (macs / 10.))
    assert out['train']['max_ratio'] == pytest.approx((4 / 100.) / (2 * macs / 10.))
    for key, released_s in (('eval', 4 / 400.), ('train', 4 / 100.)):
        b = out[key]
        assert 0 < b['ours_kernel_warm_s'] and 0 < b['ours_kernel_s']
        assert b['kernel_max_ratio'] == pytest.approx(released_s / b['ours_kernel_s'])


def test_kernel_timer_times_the_mac_kernels_and_the_accelerated_forms():
    """Forward and backward matmuls are timed (one call each: addmm, then the weight's mm;
    the input needs no gradient), elementwise ops are not; at inference the package's packed
    oneDNN Linear is what runs and is timed (count_gmacs, by contrast, turns the forms off)."""
    from visattn_mm.models import accel
    from visattn_mm.models.layers import Linear
    from visattn_mm.utils.benchmarking import KernelTimer, count_gmacs, kernel_seconds
    linear = Linear(64, 32)
    x = torch.randn(8, 64)

    def step(x):
        torch.relu(linear(x)).sum().backward()

    timer = kernel_seconds(step, x, repeats=3)
    assert timer.calls == 2
    assert 0 < timer.warm_seconds <= timer.seconds
    timer = kernel_seconds(lambda x: torch.relu(x) + x, x)
    assert timer.calls == 0 and timer.seconds == 0
    linear.eval()
    accel.select(linear)
    seen = []

    class Record(KernelTimer):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.overloadpacket)
            return super().__torch_dispatch__(func, types, args, kwargs)

    with torch.no_grad():
        with Record() as timer:
            out = linear(x)
        assert timer.calls == 1 and torch.ops.mkldnn._linear_pointwise in seen
        torch.testing.assert_close(out, torch.nn.functional.linear(x, linear.weight, linear.bias))
    assert count_gmacs(linear, x) == pytest.approx(8 * 64 * 32 / 1e9)


@pytest.mark.parametrize('groups', [1, 4, 16])
def test_conv_backward_macs_are_twice_the_forward(groups):
    """Input and weight gradients each take the forward's products, also for grouped and
    depthwise convs (PyTorch's own formula counts their weight gradient ``groups`` times)."""
    from visattn_mm.utils.benchmarking import count_gmacs
    conv = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=groups)
    x = torch.randn(2, 16, 16, 16, requires_grad=True)
    forward = count_gmacs(conv, x)
    assert forward * 1e9 == 2 * 32 * 8 * 8 * (16 // groups) * 9
    step = count_gmacs(lambda x: conv(x).sum().backward(), x, grad=True)
    assert step == pytest.approx(3 * forward)
    x.requires_grad_(False)  # the image: no input gradient
    assert count_gmacs(lambda x: conv(x).sum().backward(), x, grad=True) == pytest.approx(
        2 * forward)


def test_memory_needs_a_positive_count():
    run = subprocess.run([sys.executable, TOOL, '--fcvit', '.', '--memory', '-1'],
                         capture_output=True, text=True)
    assert run.returncode == 2 and '--memory N takes N >= 1' in run.stderr


def test_compile_refuses_bound_and_memory():
    run = subprocess.run([sys.executable, TOOL, '--fcvit', '.', '--compile', '--bound'],
                         capture_output=True, text=True)
    assert run.returncode == 2 and '--compile times the compiled model only' in run.stderr


def test_compiled_ours_reports_its_compilation_and_its_difference(tool, monkeypatch):
    """With ``compile_ours`` ours runs through torch.compile: the warm-up round's times are its
    compilation, and its output is checked against the eager model's."""
    def tiny(*args):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000))

    monkeypatch.setattr(tool, 'build_ours', tiny)
    monkeypatch.setattr(tool, 'build_released', tiny)
    row = tool.interleave('fcvit', '.', batch=2, rounds=1, device='cpu', size=(8, 8),
                          compile_ours=True)
    assert set(row['compile_s']) == {'eval', 'train'} and min(row['compile_s'].values()) > 0
    assert row['compiled_max_rel_diff'] < 1e-5
    assert row['eval']['ratio'] > 0 and row['train']['ratio'] > 0


def test_memory_is_the_median_of_fresh_processes(tool, monkeypatch, capsys):
    """``--memory N``: N children per model and step, in turns; the median and the range."""
    import json
    import types
    row = dict(params=dict(released=1, ours=1),
               eval=dict(released_imgs_per_s=1., ours_imgs_per_s=2., ratio=2.),
               train=dict(released_imgs_per_s=1., ours_imgs_per_s=1.5, ratio=1.5))
    monkeypatch.setattr(tool, 'interleave', lambda *args: dict(row))
    # per round: released eval, released train, ours eval, ours train
    peaks = iter([500, 3000, 900, 2000,
                  800, 3100, 600, 2100,
                  450, 2900, 650, 1900])
    calls = []

    def child(cmd, **kwargs):
        calls.append(cmd[-2:])
        return types.SimpleNamespace(stdout=json.dumps(next(peaks)))

    monkeypatch.setattr(tool.subprocess, 'run', child)
    tool.main(['--fcvit', '.', '--memory', '3', '--malloc', 'default', '--json', '/dev/null'])
    assert calls[:4] == [['released', 'eval'], ['released', 'train'], ['ours', 'eval'],
                         ['ours', 'train']] and len(calls) == 12
    out = capsys.readouterr().out
    assert 'peak MiB (median of 3): released 500 (450-800), ours 650 (600-900)' in out
    assert 'released 3000 (2900-3100), ours 2000 (1900-2100)' in out
