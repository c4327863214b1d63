"""tools/train.py, tools/test.py, tools/dist_train.sh, tools/dist_test.sh (visattn_mm.apis.launch).

The end-to-end cases (marked ``e2e``) run the tools as a user would, on the CPU, with the
headline config (configs/pslt_retinanet.py, shortened by visattn_mm.testing.mini_config and with a
one-block-per-stage PSLT so an iteration takes well under a second) on the mini COCO set:

- 2 processes (gloo) train and save a checkpoint; tools/test.py in 1 process and
  tools/dist_test.sh in 2 give the same COCO metrics and bit-identical predictions;
- a run killed (SIGKILL) right after a checkpoint, then resumed with ``--resume``, ends with
  exactly the weights and optimiser state of an uninterrupted run;
- a truncated checkpoint given to tools/test.py ends with a message naming the file.

The config keeps the shipped SyncBN; multi-process CPU runs replace it with
``--cfg-options model.backbone.norm_cfg.type=BN`` (torch's SyncBatchNorm needs CUDA).
Subprocesses run with OMP_NUM_THREADS=1: two processes on two cores, and the same arithmetic
in the 1- and 2-process evaluations.
"""
import os
import os.path as osp
import pickle
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.nn as nn
from e2e.cases import DET
from mmengine.config import Config

from visattn_mm.apis import launch
from visattn_mm.testing import mini_datasets
from visattn_mm.testing.mini_config import make_mini_config
from visattn_mm.utils.checkpoint import CorruptCheckpointError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
CONFIG = osp.join(ROOT, 'configs', 'pslt_retinanet.py')
NO_SYNC_BN = ['--cfg-options', 'model.backbone.norm_cfg.type=BN']
e2e = pytest.mark.e2e


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PYTHONWARNINGS='ignore')
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env.update(extra)
    return env


def _free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def _run(cmd, cwd, expect_ok: bool = True, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=str(cwd), env=_env(**env), capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)
    if expect_ok:
        assert proc.returncode == 0, \
            f'{" ".join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-6000:]}'
    return proc


def _train(*args, cwd):
    return _run([sys.executable, osp.join(TOOLS, 'train.py'), *args], cwd)


def _test_metrics(log: str) -> dict:
    """``key: value`` pairs of the last ``(test)`` line of an mmengine log."""
    lines = [line for line in log.splitlines() if '(test)' in line]
    assert lines, f'no test results in the log:\n{log[-3000:]}'
    return {k: float(v) for k, v in re.findall(r'([\w/]+): (-?[\d.]+(?:e-?\d+)?)', lines[-1])}


def _small(cfg: Config) -> Config:
    """A PSLT RetinaNet small enough for a few CPU iterations: one block per stage, embed 12,
    32-channel FPN and head; no drop path (its random draws are not in a checkpoint)."""
    cfg.model.backbone.update(arch=dict(embed_dims=12, depths=(1, 1, 1, 1), num_heads=(2, 4)),
                              drop_path_rate=0.0)
    cfg.model.neck.update(in_channels=[24, 48, 96, 192], out_channels=32)
    cfg.model.bbox_head.update(in_channels=32, feat_channels=32, stacked_convs=1)
    return cfg


@pytest.fixture(scope='module')
def mini_coco(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('tools') / 'coco')
    mini_datasets.make_coco(root, seed=0, num_train=8, num_val=4, size=96)
    return root


def _write_config(mini_coco: str, path, batch_size: int = 2, **extra) -> str:
    cfg = _small(make_mini_config(CONFIG, mini_coco, iters=1, validate=False, scale=(96, 64),
                                  batch_size=batch_size))
    cfg.merge_from_dict(extra)
    cfg.dump(str(path))
    return str(path)


def _state(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


# --------------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------------

@e2e
@pytest.mark.skipif(torch.cuda.is_available(),
                    reason='multi-process CPU (gloo) runs; a CUDA host takes nccl')
def test_two_process_training_then_1_and_2_process_tests_agree(mini_coco, tmp_path):
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    work = tmp_path / 'train'
    trained = _run(['bash', osp.join(TOOLS, 'dist_train.sh'), config, '2', '--work-dir',
                    str(work), *NO_SYNC_BN], tmp_path, PORT=_free_port())
    checkpoint = str(work / 'epoch_1.pth')
    assert osp.isfile(checkpoint)
    log = trained.stdout + trained.stderr
    assert 'Distributed launcher: pytorch' in log and "dist_cfg: {'backend': 'gloo'}" in log
    # 8 images, 2 processes x 2 images: 2 iterations in the epoch
    assert re.search(r'Epoch\(train\) \[1\]\[2/2\]', log), log[-2000:]

    one = _run([sys.executable, osp.join(TOOLS, 'test.py'), config, checkpoint, '--work-dir',
                str(tmp_path / 'test1'), '--out', str(tmp_path / 'test1.pkl'), *NO_SYNC_BN],
               tmp_path)
    two = _run(['bash', osp.join(TOOLS, 'dist_test.sh'), config, checkpoint, '2', '--work-dir',
                str(tmp_path / 'test2'), '--out', str(tmp_path / 'test2.pkl'), *NO_SYNC_BN],
               tmp_path, PORT=_free_port())
    m1, m2 = _test_metrics(one.stdout + one.stderr), _test_metrics(two.stdout + two.stderr)
    for key in DET:
        assert key in m1, (key, m1)
    assert {k: v for k, v in m1.items() if k.startswith('coco/')} == \
        {k: v for k, v in m2.items() if k.startswith('coco/')}
    # the metrics of a 2-iteration model are near 0; the predictions themselves are identical
    with open(tmp_path / 'test1.pkl', 'rb') as f1, open(tmp_path / 'test2.pkl', 'rb') as f2:
        p1, p2 = pickle.load(f1), pickle.load(f2)
    assert [p['img_id'] for p in p1] == [p['img_id'] for p in p2] and len(p1) == 4
    for a, b in zip(p1, p2):
        for key in ('bboxes', 'scores', 'labels'):
            assert torch.equal(a['pred_instances'][key], b['pred_instances'][key]), key


@e2e
def test_killed_training_resumes_to_the_same_weights(mini_coco, tmp_path):
    # iteration-based, 6 iterations of 4 images (2 per pass over the 8), checkpoint every 2;
    # a resumed loop re-draws the data of the iterations it skips, so with num_workers=0 the
    # augmentations' numpy draws are replayed too
    config = _write_config(
        mini_coco, tmp_path / 'resume.py', batch_size=4,
        train_cfg=dict(_delete_=True, type='IterBasedTrainLoop', max_iters=6, val_interval=100),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                              end=6)],
        default_hooks=dict(checkpoint=dict(by_epoch=False, interval=2, max_keep_ckpts=-1),
                           logger=dict(interval=1)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0, deterministic=True))
    _train(config, '--work-dir', str(tmp_path / 'whole'), cwd=tmp_path)

    work = tmp_path / 'killed'
    proc = subprocess.Popen([sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir',
                             str(work)], cwd=str(tmp_path), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    last = work / 'last_checkpoint'
    try:
        deadline = time.time() + 300
        while not (last.is_file() and last.read_text().strip()) and proc.poll() is None:
            assert time.time() < deadline, 'no checkpoint within 300 s'
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'training ended before it could be killed'
    # killed right after iteration 2's checkpoint (iteration 4's if this poll was slow)
    done = int(re.fullmatch(r'.*iter_(\d+)\.pth', last.read_text().strip()).group(1))
    assert done in (2, 4) and not (work / 'iter_6.pth').exists()

    resumed = _train(config, '--work-dir', str(work), '--resume', cwd=tmp_path)
    log = resumed.stdout + resumed.stderr
    # it went on from the checkpoint (a fresh start of the same seed would end equal too)
    assert f'resumed epoch: 0, iter: {done}' in log, log[-3000:]
    assert f'Advance dataloader {done} steps' in log
    assert f'Iter(train) [{done + 1}/6]' in log and 'Iter(train) [1/6]' not in log
    whole, again = _state(str(tmp_path / 'whole' / 'iter_6.pth')), _state(str(work / 'iter_6.pth'))
    assert again['meta']['iter'] == whole['meta']['iter'] == 6
    assert whole['state_dict'].keys() == again['state_dict'].keys()
    for key, value in whole['state_dict'].items():
        assert torch.equal(value, again['state_dict'][key]), key
    for i, state in whole['optimizer']['state'].items():
        for key, value in state.items():
            assert torch.equal(value, again['optimizer']['state'][i][key]), (i, key)
    # the resumed iterations really trained: weights moved from the checkpoint's
    mid = _state(str(work / f'iter_{done}.pth'))['state_dict']
    assert any(not torch.equal(v, mid[k]) for k, v in whole['state_dict'].items())


@e2e
def test_truncated_checkpoint_is_named_by_test_py(mini_coco, tmp_path):
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(256, 256)}, 'meta': {}}, str(good))
    bad = tmp_path / 'epoch_1.pth'
    bad.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    proc = _run([sys.executable, osp.join(TOOLS, 'test.py'), config, str(bad)], tmp_path,
                expect_ok=False)
    assert proc.returncode == 1
    assert f'checkpoint {bad} is truncated or corrupt' in proc.stderr, proc.stderr[-3000:]
    assert 'PytorchStreamReader' not in proc.stderr and 'Traceback' not in proc.stderr


# --------------------------------------------------------------------------------------------
# the library, in process (fast)
# --------------------------------------------------------------------------------------------

def test_unknown_or_missing_default_scope_lists_the_toolboxes(tmp_path):
    path = tmp_path / 'bad.py'
    path.write_text("default_scope = 'mmfoo'\nmodel = dict(type='X')\n")
    with pytest.raises(launch.LaunchError, match="unknown default_scope 'mmfoo'.*'mmdet', "
                       "'mmseg', 'mmpretrain'"):
        launch.load_config(str(path))
    path.write_text("model = dict(type='X')\n")
    with pytest.raises(launch.LaunchError, match='no default_scope'):
        launch.load_config(str(path))


def test_work_dir_default_and_cfg_options(mini_coco, tmp_path):
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    cfg = launch.load_config(config, {'model.backbone.norm_cfg.type': 'BN'})
    assert cfg.work_dir == osp.join('./work_dirs', 'retinanet')
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert launch.toolbox_of(cfg) == 'mmdet'


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_cpu_distributed_setup_refuses_sync_bn_and_needs_the_launcher_env(
        mini_coco, tmp_path, monkeypatch):
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    cfg = launch.load_config(config)
    with pytest.raises(launch.LaunchError, match=r'SyncBN needs CUDA.*model\.backbone\.norm_cfg'
                       r'.*--cfg-options model\.backbone\.norm_cfg\.type=BN'):
        launch.setup_distributed(cfg, 'pytorch')
    cfg = launch.load_config(config, {'model.backbone.norm_cfg.type': 'BN'})
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(launch.LaunchError, match='RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT '
                       'not set.*dist_train.sh'):
        launch.setup_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'visattn_mm.CPUDistributedDataParallel'
    assert 'visattn_mm.apis.cpu' in cfg.custom_imports.imports
    assert not launch.setup_distributed(launch.load_config(config), 'none')


def test_find_sync_bn_paths():
    model = dict(type='M', backbone=dict(norm_cfg=dict(type='SyncBN')),
                 heads=[dict(norm_cfg=dict(type='GN')), dict(norm_cfg=dict(type='mmcv.SyncBN'))])
    assert launch.find_sync_bn(model) == ['model.backbone.norm_cfg', 'model.heads.1.norm_cfg']


def test_resume_checks_the_checkpoint_it_will_load(mini_coco, tmp_path, capsys):
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    work = tmp_path / 'work'
    work.mkdir()
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.randn(64, 64)}}, str(good))
    data = bytearray(good.read_bytes())
    data[-2000:-1900] = bytes(100)  # tensor bytes changed: torch.load would return them
    corrupt = work / 'iter_2.pth'
    corrupt.write_bytes(bytes(data))
    (work / 'last_checkpoint').write_text(str(corrupt))
    with pytest.raises(SystemExit) as exit_info:
        launch.main_train([config, '--work-dir', str(work), '--resume'])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f'checkpoint {corrupt} (named by {work / "last_checkpoint"}) is corrupt' in err, err
    assert '--resume PATH' in err
    with pytest.raises(CorruptCheckpointError, match=f'checkpoint {corrupt} is corrupt'):
        cfg = launch.prepare_train_config(launch.load_config(config), resume=str(corrupt))
        launch.check_checkpoint(cfg)
    (work / 'last_checkpoint').write_text('')
    with pytest.raises(launch.LaunchError, match='last_checkpoint is empty'):
        launch.check_checkpoint(launch.prepare_train_config(
            launch.load_config(config, work_dir=str(work)), resume='auto'))
    with pytest.raises(launch.LaunchError, match='missing.pth does not exist'):
        launch.check_checkpoint(launch.prepare_test_config(
            launch.load_config(config), str(tmp_path / 'missing.pth')))


# ---- mixed precision on the CPU

class _Probe(nn.Module):
    """Records the dtype its linear computes in."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.seen = []

    def forward(self, x):
        out = self.fc(x)
        self.seen.append(out.dtype)
        return out


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_amp_on_the_cpu_is_bfloat16_autocast(mini_coco, tmp_path):
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    cfg = launch.prepare_train_config(launch.load_config(config), amp=True)
    assert cfg.optim_wrapper.type == 'visattn_mm.CPUAmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16' and 'loss_scale' not in cfg.optim_wrapper
    assert 'visattn_mm.apis.cpu' in cfg.custom_imports.imports
    # a config that has AmpOptimWrapper itself (FCViT Mask R-CNN) runs the same way
    cfg = launch.prepare_train_config(launch.load_config(
        osp.join(ROOT, 'configs', 'fcvit', 'mask-rcnn_fcvit-b12_fpn_1x_coco.py')))
    assert cfg.optim_wrapper.type == 'visattn_mm.CPUAmpOptimWrapper'

    from mmengine.registry import OPTIM_WRAPPERS
    probe = _Probe()
    wrapper = OPTIM_WRAPPERS.build(dict(cfg.optim_wrapper, optimizer=torch.optim.SGD(
        probe.parameters(), lr=0.1)))
    before = probe.fc.weight.detach().clone()
    with wrapper.optim_context(probe):
        loss = probe(torch.randn(8, 4)).float().pow(2).mean()
    wrapper.update_params(loss)
    assert probe.seen == [torch.bfloat16]
    assert probe.fc.weight.dtype == torch.float32 and not torch.equal(before, probe.fc.weight)
    assert wrapper.state_dict()['loss_scaler'] == {}
    wrapper.load_state_dict(wrapper.state_dict())
    with pytest.raises(ValueError, match='bfloat16 only'):
        OPTIM_WRAPPERS.build(dict(type='visattn_mm.CPUAmpOptimWrapper', dtype='float16',
                                  optimizer=torch.optim.SGD(probe.parameters(), lr=0.1)))


@pytest.fixture
def patched_cuda(monkeypatch):
    """A machine with one CUDA GPU, as mmengine and the launcher see it (no GPU needed)."""
    import mmengine.device.utils as device_utils
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(device_utils, 'DEVICE', 'cuda')
    from visattn_mm.apis import config
    monkeypatch.setattr(config, 'on_cpu', lambda: False)
    for key, value in dict(RANK='0', WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                           MASTER_PORT='29999').items():
        monkeypatch.setenv(key, value)


def test_launcher_on_cuda_keeps_fp16_amp_nccl_and_sync_bn(mini_coco, tmp_path, patched_cuda):
    """Where CUDA is present the launcher leaves the config to mmengine as it is: --amp is
    mmengine's fp16 AmpOptimWrapper (dynamic loss scale), the distributed backend nccl, SyncBN
    kept, no CPU wrappers or imports, and no process group started by the launcher."""
    from mmengine.device import get_device
    assert get_device() == 'cuda'
    config = _write_config(mini_coco, tmp_path / 'retinanet.py')
    cfg = launch.prepare_train_config(launch.load_config(config), amp=True)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic' and 'dtype' not in cfg.optim_wrapper
    assert launch.setup_distributed(cfg, 'pytorch') is False
    assert launch.find_sync_bn(cfg.model)  # the shipped SyncBN stays
    assert cfg.env_cfg.get('dist_cfg', {}).get('backend', 'nccl') == 'nccl'
    assert 'model_wrapper_cfg' not in cfg or 'CPU' not in cfg.model_wrapper_cfg.get('type', '')
    assert 'visattn_mm.apis.cpu' not in cfg.get('custom_imports', {}).get('imports', [])
    assert not torch.distributed.is_initialized()
    # a config with AmpOptimWrapper of its own keeps it
    cfg = launch.prepare_train_config(launch.load_config(
        osp.join(ROOT, 'configs', 'fcvit', 'mask-rcnn_fcvit-b12_fpn_1x_coco.py')))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
