"""Runner checkpoints load under torch's weights_only default, and nothing more is allowed."""
import io
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

import visattn_mm  # noqa: F401  (registers the safe globals)
from visattn_mm.compat import WEIGHTS_ONLY_DEFAULT

# torch < 2.6 loads everything by default (mmengine's loads included): nothing is registered
needs_weights_only_default = pytest.mark.skipif(
    not WEIGHTS_ONLY_DEFAULT, reason='torch < 2.6 does not load with weights_only by default')


class _Points(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(x=torch.full((2,), float(i)))


class _Line(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x, mode='tensor'):
        out = self.fc(x)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def _runner(work_dir, max_epochs, **kwargs):
    return Runner(
        model=_Line(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_Points(), batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-3)),
        param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, end=2)],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        **kwargs)


def test_runner_checkpoint_loads_and_resumes(tmp_path):
    _runner(tmp_path / 'a', max_epochs=1).train()
    ckpt_path = tmp_path / 'a' / 'epoch_1.pth'
    # the default the Runner uses with this torch
    ckpt = torch.load(ckpt_path, weights_only=WEIGHTS_ONLY_DEFAULT)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(ckpt)
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() >= 0
    # resume continues from epoch 1 to 2 through mmengine's own loader
    runner = _runner(tmp_path / 'a', max_epochs=2, resume=True)
    runner.train()
    assert runner.epoch == 2


@needs_weights_only_default
def test_crafted_getattr_is_refused():
    # getattr(numpy.ndarray, 'tofile'): the widening a plain `getattr` allow-list would open
    payload = b'\x80\x02c__builtin__\ngetattr\ncnumpy\nndarray\nX\x06\x00\x00\x00tofile\x86R.'
    with pytest.raises(pickle.UnpicklingError, match='only the HistoryBuffer statistics'):
        from torch._weights_only_unpickler import Unpickler
        Unpickler(io.BytesIO(payload)).load()


# ---- damaged files: check_checkpoint_file names the file and says what is wrong

def _saved(tmp_path, name='ck.pth', **kwargs):
    path = tmp_path / name
    torch.save({'state_dict': {'w': torch.randn(128, 64)}, 'meta': {'iter': 2}}, str(path),
               **kwargs)
    return path


def test_intact_checkpoints_pass(tmp_path):
    from visattn_mm.utils.checkpoint import check_checkpoint_file
    check_checkpoint_file(str(_saved(tmp_path)))
    # legacy (non-zip) format: no checksums to check, left to torch.load
    check_checkpoint_file(str(_saved(tmp_path, 'legacy.pth', _use_new_zipfile_serialization=False)))
    if not hasattr(torch.serialization, 'set_crc32_options'):  # torch < 2.4
        return
    # saved without CRC-32s (torch writes 0s): nothing to check them against
    torch.serialization.set_crc32_options(False)
    try:
        path = _saved(tmp_path, 'nocrc.pth')
    finally:
        torch.serialization.set_crc32_options(True)
    check_checkpoint_file(str(path))


@pytest.mark.parametrize('keep', [0.5, 0.99, -1])
def test_truncated_checkpoint_is_named(tmp_path, keep):
    from visattn_mm.utils.checkpoint import CorruptCheckpointError, check_checkpoint_file
    data = _saved(tmp_path).read_bytes()
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(data[:len(data) - 1] if keep == -1 else data[:int(len(data) * keep)])
    with pytest.raises(CorruptCheckpointError,
                       match=f'checkpoint {bad} is truncated or corrupt.*resume elsewhere'):
        check_checkpoint_file(str(bad), hint='resume elsewhere')
    # what torch says instead: `PytorchStreamReader failed reading zip archive` or a bare
    # `OSError: [Errno 22] Invalid argument`
    with pytest.raises((RuntimeError, OSError)):
        torch.load(str(bad), weights_only=True)


def test_changed_tensor_bytes_are_caught(tmp_path):
    from visattn_mm.utils.checkpoint import CorruptCheckpointError, check_checkpoint_file
    good = _saved(tmp_path)
    data = bytearray(good.read_bytes())
    data[-3000:-2900] = bytes(100)
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(bytes(data))
    # torch loads it, with other numbers
    loaded = torch.load(str(bad), weights_only=True)['state_dict']['w']
    assert not torch.equal(loaded, torch.load(str(good), weights_only=True)['state_dict']['w'])
    with pytest.raises(CorruptCheckpointError, match=f'checkpoint {bad} is corrupt: .*CRC'):
        check_checkpoint_file(str(bad))


def test_empty_missing_and_foreign_files(tmp_path):
    from visattn_mm.utils.checkpoint import CorruptCheckpointError, check_checkpoint_file
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CorruptCheckpointError, match=f'checkpoint {empty} is empty'):
        check_checkpoint_file(str(empty))
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    with pytest.raises(CorruptCheckpointError, match='not a torch checkpoint'):
        check_checkpoint_file(str(text))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        check_checkpoint_file(str(tmp_path / 'missing.pth'))


def test_authors_loader_raises_the_same_error_type(tmp_path):
    from visattn_mm.utils.checkpoint import CorruptCheckpointError, load_authors_checkpoint
    data = _saved(tmp_path).read_bytes()
    bad = tmp_path / 'bad.pth'
    bad.write_bytes(data[:len(data) // 2])
    with pytest.raises(CorruptCheckpointError, match='truncated or corrupt'):
        load_authors_checkpoint(str(bad))


@needs_weights_only_default
def test_authors_loader_leaves_runner_types_allowed(tmp_path):
    """Loading an authors' file adds its extra types only for the load: the numpy types it
    shares with Runner checkpoints stay allowed afterwards (leaving torch's safe_globals context
    removes what it added)."""
    import numpy as np

    from visattn_mm.utils.checkpoint import load_authors_checkpoint, runner_checkpoint_globals
    before = set(torch.serialization.get_safe_globals())
    assert set(runner_checkpoint_globals()) <= before
    path = tmp_path / 'authors.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}, 'best': np.float64(0.5),
                'arr': np.arange(3)}, path)
    assert load_authors_checkpoint(str(path))['best'] == 0.5
    assert set(torch.serialization.get_safe_globals()) == before


def test_tools_load_whole_model_checkpoints_checked_and_strict(tmp_path):
    """visualize.py and export_onnx.py build a config's model with a checkpoint through one
    function: a truncated file is named as such, one of another model is refused (no random
    weights behind a warning), a fitting one loads."""
    import os.path as osp

    from visattn_mm.utils.checkpoint import CorruptCheckpointError
    from visattn_mm.apis.config import build_model_from_config
    config = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'fcvit',
                      'fcvit-tiny_8xb128_in1k.py')
    model = build_model_from_config(config)
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': model.state_dict()}, good)
    loaded = build_model_from_config(config, str(good))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 loaded.state_dict().values()))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CorruptCheckpointError, match='truncated.pth'):
        build_model_from_config(config, str(truncated))
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': {'backbone.stem.proj.weight': torch.zeros(1)}}, other)
    with pytest.raises(RuntimeError, match='(?i)missing|size mismatch'):
        build_model_from_config(config, str(other))
