"""tools/analysis/model_zoo.py on small archs: the table's numbers are the models' own."""
import importlib.util
import os.path as osp
import re

import pytest
import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def zoo():
    spec = importlib.util.spec_from_file_location(
        'model_zoo', osp.join(ROOT, 'tools', 'analysis', 'model_zoo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


def _table_params(text: str, name: str) -> int:
    row = next(line for line in text.splitlines() if line.startswith(f'| {name} |'))
    return int(re.match(r'([\d,]+)', row.split('|')[2].strip()).group(1).replace(',', ''))


def test_registered_arch_table_counts_the_model(zoo, tmp_path):
    out = tmp_path / 'zoo.md'
    text = zoo.main(['--archs', 'pslt-tiny', '--no-speed', '--out', str(out)])
    assert out.read_text() == text
    entry = zoo.select(['pslt-tiny'])[0]
    model = zoo.build_classifier(entry)
    params = sum(p.numel() for p in model.parameters())
    assert _table_params(text, 'pslt-tiny') == params == entry.target_params  # targets.md
    assert 'images/s' not in text  # --no-speed
    row = next(line for line in text.splitlines() if line.startswith('| pslt-tiny |'))
    assert float(row.split('|')[4]) == pytest.approx(entry.target_gmacs, abs=5e-3)


def test_tiny_arch_table_and_speed(zoo):
    entry = zoo.ZooEntry('bvit-mini', 'BViT', 'configs/bvit/bvit-tiny_4xb256_in1k.py',
                         backbone=dict(arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                                 head_dims=16, feedforward_channels=64)),
                         head=dict(in_channels=32))
    rows = zoo.measure([entry], speed=False, progress=False, dense_macs=True)
    text = zoo.markdown(rows, speed=False, dense_macs=True)
    model = zoo.build_classifier(entry)
    assert _table_params(text, 'bvit-mini') == sum(p.numel() for p in model.parameters())
    assert rows[0]['dense_params'] == sum(
        p.numel() for p in zoo.build_dense_backbone(entry).parameters())
    assert rows[0]['dense_gmacs'] > rows[0]['gmacs'] > rows[0]['gmacs_as_run'] > 0
    assert f"{rows[0]['gmacs_as_run']:.3f} as run (last layer for the cls token only)" in text
    speed = zoo.measure_speed(entry, 'cpu', batch=1, seconds=0.)
    assert speed['ips'] > 0 and speed['peak_mb'] >= 0


def test_fused_attention_is_counted(zoo):
    q = torch.randn(1, 2, 50, 16)
    gmacs = zoo.count_gmacs(F.scaled_dot_product_attention, q, q, q)
    assert gmacs * 2e9 == 2 * 2 * 50 * 50 * (16 + 16)


def test_unknown_arch_is_refused(zoo):
    with pytest.raises(ValueError, match='pslt-base'):
        zoo.select(['pslt-huge'])


@pytest.mark.parametrize('name', ['pslt-tiny', 'fcvit-tiny', 'bvit-tiny', 'dense-deit-tiny'])
def test_readme_rows_are_the_tools(zoo, name):
    """The README's size-and-compute rows are this tool's output for today's code (they are
    pasted by hand: a model change that moves a count must regenerate them)."""
    rows = zoo.measure(zoo.select([name]), speed=False, progress=False, dense_macs=True)
    row = next(line for line in zoo.markdown(rows, speed=False, dense_macs=True).splitlines()
               if line.startswith(f'| {name} |'))
    with open(osp.join(ROOT, 'README.md')) as f:
        readme = [line.rstrip('\n') for line in f if line.startswith(f'| {name} |')]
    assert row in readme, (f'README row of {name} differs from the tool\'s:\n{row}\n'
                           'regenerate it with python tools/analysis/model_zoo.py --dense-macs')
