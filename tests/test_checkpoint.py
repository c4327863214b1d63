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
    ckpt = torch.load(ckpt_path, weights_only=True)  # the default the Runner uses
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(ckpt)
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() >= 0
    # resume continues from epoch 1 to 2 through mmengine's own loader
    runner = _runner(tmp_path / 'a', max_epochs=2, resume=True)
    runner.train()
    assert runner.epoch == 2


def test_crafted_getattr_is_refused():
    # getattr(numpy.ndarray, 'tofile'): the widening a plain `getattr` allow-list would open
    payload = b'\x80\x02c__builtin__\ngetattr\ncnumpy\nndarray\nX\x06\x00\x00\x00tofile\x86R.'
    with pytest.raises(pickle.UnpicklingError, match='only the HistoryBuffer statistics'):
        from torch._weights_only_unpickler import Unpickler
        Unpickler(io.BytesIO(payload)).load()
