"""tools/benchmark.py: the interleaved mode, with and without autocast rows."""
import importlib.util
import json
import os.path as osp

import pytest
import torch
from torch import nn

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location('benchmark_tool',
                                               osp.join(ROOT, 'tools', 'benchmark.py'))
benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchmark)


def test_interleave_adds_autocast_rows(tmp_path):
    out = tmp_path / 'rows.json'
    benchmark.main(['--interleave', '--models', 'bvit-ti', 'dense-deit-ti', '--sizes', '32x32x2',
                    '--rounds', '1', '--amp', 'bf16', '--malloc', 'default', '--json', str(out)])
    rows = json.loads(out.read_text())
    assert [r['model'] for r in rows] == ['bvit-ti', 'dense-deit-ti', 'bvit-ti@bf16',
                                          'dense-deit-ti@bf16']
    assert rows[0]['eval_ratio'] == rows[0]['train_ratio'] == 1.0  # the fp32 anchor
    assert rows[2]['params'] == rows[0]['params']
    assert all(r[f'{k}_imgs_per_s'] > 0 for r in rows for k in ('eval', 'train'))


def test_amp_needs_interleave(capsys):
    with pytest.raises(SystemExit) as err:
        benchmark.main(['--models', 'bvit-ti', '--amp', 'bf16'])
    assert err.value.code == 2 and '--amp needs --interleave' in capsys.readouterr().err


@pytest.mark.parametrize('train', [False, True])
def test_timed_step_runs_the_forward_under_autocast(train):
    from visattn_mm.utils.benchmarking import timed_step
    seen = []
    model = nn.Linear(8, 4)
    model.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    x = torch.randn(2, 8)
    timed_step(model, x, train, lambda out: out.float().sum(), amp=torch.bfloat16)
    timed_step(model, x, train, lambda out: out.float().sum())
    assert seen == [torch.bfloat16, torch.float32]
    assert model.weight.grad is None  # dropped after the step
