"""The package builds as a wheel that carries what `mim` needs (configs, tools, model index)."""
import glob
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import yaml

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_wheel_carries_mim_extension(tmp_path):
    src = tmp_path / 'src'
    # a copy: building in copy mode replaces the checkout's .mim symlinks
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        '.git', 'work_dirs', 'data', '.mim', '__pycache__', '*.egg-info', 'build'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(tmp_path / 'dist'), str(src)], check=True,
                   stdin=subprocess.DEVNULL)
    wheel, = glob.glob(str(tmp_path / 'dist' / 'visattn_mm-*.whl'))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert 'visattn_mm/.mim/configs/pslt_retinanet.py' in names
    assert 'visattn_mm/.mim/tools/convert_official.py' in names
    assert 'visattn_mm/.mim/tools/dataset_converters/market1501_to_reid.py' in names
    assert 'visattn_mm/testing/mini_datasets.py' in names
    assert 'visattn_mm/models/backbones/pslt.py' in names
    index = yaml.safe_load(zipfile.ZipFile(wheel).read('visattn_mm/.mim/model-index.yml'))
    for metafile in index['Import']:
        assert f'visattn_mm/.mim/{metafile}' in names, metafile


def test_model_index_points_at_real_configs():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    for metafile in index['Import']:
        with open(osp.join(ROOT, metafile)) as f:
            meta = yaml.safe_load(f)
        assert meta['Models'], metafile
        for model in meta['Models']:
            assert osp.isfile(osp.join(ROOT, model['Config'])), model['Config']
