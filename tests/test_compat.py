"""visattn_mm.compat: each newer-torch API and its fallback, both run on this torch."""
import argparse
import os
import pickle

import pytest
import torch
from torch import nn

from visattn_mm import compat


def test_is_compiling_falls_back_to_dynamo(monkeypatch):
    assert compat.is_compiling() is False
    from torch import _dynamo
    monkeypatch.setattr(_dynamo, 'is_compiling', lambda: True)
    monkeypatch.delattr(torch.compiler, 'is_compiling', raising=False)  # torch < 2.3
    assert compat.is_compiling() is True


def test_is_autocast_enabled_per_device_and_fallback(monkeypatch):
    assert not compat.is_autocast_enabled('cpu')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        assert compat.is_autocast_enabled('cpu')
        assert not compat.is_autocast_enabled('cuda')
    real = torch.is_autocast_enabled
    if compat.TORCH_VERSION < compat.digit_version('2.4.0'):
        return  # this torch has the old signature: the fallback ran above

    def old_signature(*args):  # torch < 2.4 took no device
        if args:
            raise TypeError('is_autocast_enabled() takes 0 positional arguments')
        return real('cuda')

    with torch.autocast('cpu', dtype=torch.bfloat16):  # (its exit asks the new signature)
        monkeypatch.setattr(torch, 'is_autocast_enabled', old_signature)
        assert compat.is_autocast_enabled('cpu')
        assert not compat.is_autocast_enabled('cuda')
        assert not compat.is_autocast_enabled('mps')
        monkeypatch.undo()


def test_grad_scaler_and_its_fallback(monkeypatch):
    scaler = compat.grad_scaler('cpu', enabled=False)
    assert not scaler.is_enabled()
    monkeypatch.delattr(torch.amp, 'GradScaler', raising=False)
    old = compat.grad_scaler('cpu', enabled=False)  # torch < 2.3: CUDA's class, disabled
    assert not old.is_enabled()
    loss = torch.tensor(2.0)
    assert old.scale(loss) is loss
    with pytest.raises(RuntimeError, match='no GradScaler'):
        compat.grad_scaler('cpu', enabled=True)


def _authors_file(tmp_path, extra=None):
    import numpy as np
    data = {'state_dict': {'w': torch.arange(3.)}, 'args': argparse.Namespace(lr=0.1),
            'best': np.float64(0.5), 'table': np.arange(2)}
    if extra is not None:
        data['extra'] = extra
    path = str(tmp_path / 'ckpt.pth')
    torch.save(data, path)
    return path


@pytest.mark.parametrize('fallback', [False, True], ids=['safe_globals', 'restricted'])
def test_load_weights_only_allows_the_listed_types_only(tmp_path, fallback):
    from visattn_mm.utils.checkpoint import authors_checkpoint_globals
    registered = getattr(torch.serialization, 'get_safe_globals', list)  # torch >= 2.4
    before = set(registered())
    data = compat.load_weights_only(_authors_file(tmp_path), authors_checkpoint_globals(),
                                    force_fallback=fallback)
    assert torch.equal(data['state_dict']['w'], torch.arange(3.))
    assert data['args'].lr == 0.1 and data['best'] == 0.5 and data['table'].tolist() == [0, 1]
    assert set(registered()) == before  # nothing left registered
    # a file that names any other global is refused, on both paths, before it runs
    from fractions import Fraction
    hostile = _authors_file(tmp_path, extra=Fraction(1, 3))  # a global beyond the list
    with pytest.raises(pickle.UnpicklingError):
        compat.load_weights_only(hostile, authors_checkpoint_globals(),
                                 force_fallback=fallback)


def test_restricted_unpickler_refuses_code(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    path = str(tmp_path / 'evil.pth')
    torch.save({'x': Boom()}, path)
    with pytest.raises(pickle.UnpicklingError, match='posix.system|os.system'):
        compat.load_weights_only(path, [], force_fallback=True)


def test_add_safe_globals_only_where_torch_loads_weights_only(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.serialization, 'add_safe_globals', calls.append, raising=False)
    monkeypatch.setattr(compat, 'WEIGHTS_ONLY_DEFAULT', False)
    assert compat.add_safe_globals([int]) is False and not calls
    monkeypatch.setattr(compat, 'WEIGHTS_ONLY_DEFAULT', True)
    assert compat.add_safe_globals([int]) is True and calls == [[int]]


def test_onednn_ops_probed_once_and_missing_ops_take_the_plain_path(monkeypatch):
    """Without the private oneDNN ops (another torch), the fusions are off and outputs stay."""
    from visattn_mm.models import accel
    from visattn_mm.models.layers import ConvGeluNorm, Linear
    compat.onednn_fusion_ops.cache_clear()
    assert compat.onednn_fusion_ops() == torch.backends.mkldnn.is_available()
    torch.manual_seed(0)
    unit, linear = ConvGeluNorm(4, 6, 1).eval(), Linear(4, 5).eval()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        ref_unit, ref_linear = unit(x), linear(x.flatten(2).transpose(1, 2))

    class NoOps:
        def __getattr__(self, name):
            raise AttributeError(f'no mkldnn op {name}')

    monkeypatch.setattr(torch.ops, 'mkldnn', NoOps())
    compat.onednn_fusion_ops.cache_clear()
    try:
        assert compat.onednn_fusion_ops() is False
        for module in (unit, linear):
            accel.select(module)
            assert accel.form_of(module) is None
        with torch.no_grad():
            torch.testing.assert_close(unit(x), ref_unit, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(linear(x.flatten(2).transpose(1, 2)), ref_linear,
                                       rtol=1e-5, atol=1e-6)
    finally:
        monkeypatch.undo()
        compat.onednn_fusion_ops.cache_clear()


def test_group_norm_input_avoids_the_channels_last_backward_crash():
    norm = nn.GroupNorm(1, 4)
    x = torch.randn(2, 4, 3, 3).contiguous(memory_format=torch.channels_last)
    safe = compat.group_norm_input(x)
    assert safe.is_contiguous() and torch.equal(safe, x)
    norm(safe).sum().backward()  # (the channels-last input would kill the process)
    assert norm.weight.grad is not None
    assert compat.group_norm_input(x.requires_grad_()) is x  # a gradient is wanted: no copy
    with torch.no_grad():
        assert compat.group_norm_input(x.detach()) is not None
