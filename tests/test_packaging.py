"""The package builds as a wheel that carries what `mim` needs (configs, tools, model index), and
mim finds the package in the environment tools/setup_env.sh makes (search, train)."""
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
    assert 'visattn_mm/testing/mini_datasets/__init__.py' in names
    assert 'visattn_mm/models/backbones/pslt.py' in names
    assert 'visattn_mm/deployment/onnx.py' in names
    assert 'visattn_mm/.mim/tools/deployment/export_onnx.py' in names
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


MIM = osp.join(osp.dirname(sys.executable), 'mim')


def _mim(*args: str, cwd: str) -> subprocess.CompletedProcess:
    """``mim ARGS`` from a folder outside the checkout (so only the installation can serve)."""
    return subprocess.run([MIM, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_mim_search(tmp_path):
    """mim resolves the package as <distribution location>/visattn_mm/.mim/model-index.yml
    (tools/setup_env.sh links that path to the checkout's package) and lists every model."""
    proc = _mim('search', 'visattn_mm', '--valid-config', cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = yaml.safe_load(proc.stdout.split('valid config ids:')[-1])
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    names = []
    for metafile in index['Import']:
        with open(osp.join(ROOT, metafile)) as f:
            names += [model['Name'] for model in yaml.safe_load(f)['Models']]
    assert sorted(listed) == sorted(names)
    # and the table itself, with one model's config
    proc = _mim('search', 'visattn_mm', '--config', 'pslt-tiny_8xb128_in1k', cwd=str(tmp_path))
    assert proc.returncode == 0 and 'configs/pslt/pslt-tiny_8xb128_in1k.py' in proc.stdout


def test_mim_train_finds_the_config_and_tools_of_this_checkout(tmp_path):
    """``mim train visattn_mm NAME`` finds the config by its bare name in the package and runs
    the package's tools/train.py (here its --help), both from this checkout."""
    proc = _mim('train', 'visattn_mm', 'fcvit-tiny_8xb128_in1k.py', '--', '--help',
                cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = osp.realpath(osp.join(ROOT, 'configs', 'fcvit', 'fcvit-tiny_8xb128_in1k.py'))
    assert f'will use {config} instead' in proc.stdout
    script = proc.stdout.split('Training command is ')[1].split()[1]
    assert osp.realpath(script) == osp.join(osp.realpath(ROOT), 'tools', 'train.py')
    assert 'usage: tools/train.py' in proc.stdout


def test_requirements_are_ranges_that_admit_the_prebuilt_wheel_stack():
    """A plugin installs into the user's environment: its requirements admit OpenMMLab's
    prebuilt-wheel stack (torch 2.1 + mmcv 2.1.0) and the pinned set-up, and pin nothing."""
    import ast

    from packaging.requirements import Requirement
    tree = ast.parse(open(osp.join(ROOT, 'setup.py')).read())
    reqs = next(ast.literal_eval(kw.value) for node in ast.walk(tree)
                if isinstance(node, ast.Call) for kw in node.keywords
                if kw.arg == 'install_requires')
    spec = {r.name: r.specifier for r in map(Requirement, reqs)}
    assert not any('==' in str(s) for s in spec.values()), spec
    for stack in ({'torch': '2.1.2', 'mmengine': '0.10.7', 'mmcv': '2.1.0', 'mmdet': '3.3.0',
                   'mmsegmentation': '1.2.2', 'mmpretrain': '1.2.0'},
                  {'torch': '2.13.0', 'mmcv': '2.0.1', 'mmdet': '3.0.0'}):
        for name, version in stack.items():
            assert spec[name].contains(version), (name, version, spec[name])
    assert not spec['mmcv'].contains('2.2.0')  # mmdet 3.x and mmseg 1.x refuse it
