"""tools/convert_official.py (visattn_mm.converters.cli): safe loading of the authors' files, a
crafted payload refused, clear errors for corrupt files, and the BViT / Dense conversions end to
end."""
import argparse
import os
import os.path as osp

import pytest
import torch

from visattn_mm.converters import cli as convert_official


class _RunsCode:
    """Unpickling this calls os.system: what a crafted checkpoint does."""

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))  # pickled as posix.system


@pytest.mark.parametrize('family, name', [('bvit', 'bvit_ti_official.pth'),
                                          ('dense', 'dense_deit_ti_official.pth')])
def test_converts_with_timm_style_namespace(golden_dir, tmp_path, family, name):
    """A timm training checkpoint keeps its argparse.Namespace: allowed, nothing else is."""
    data = torch.load(osp.join(golden_dir, name), weights_only=True)
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    torch.save({'state_dict': data['state_dict'], 'args': argparse.Namespace(lr=1e-3),
                'epoch': 299}, src)
    assert convert_official.main([family, src, dst]) == 0
    converted = torch.load(dst, weights_only=True)['state_dict']
    assert 'head.fc.weight' in converted and 'backbone.layers.11.attn.qkv.weight' in converted
    assert all(v.dtype == torch.float32 for v in converted.values())


def test_crafted_payload_refused_unless_trusted(golden_dir, tmp_path, capsys, monkeypatch):
    data = torch.load(osp.join(golden_dir, 'bvit_ti_official.pth'), weights_only=True)
    src, dst = str(tmp_path / 'src.pth'), str(tmp_path / 'dst.pth')
    torch.save({'state_dict': data['state_dict'], 'payload': _RunsCode()}, src)
    calls = []
    # the pickle names posix.system: record instead of running
    monkeypatch.setattr(os.system.__module__ + '.system', lambda cmd: calls.append(cmd) or 0)
    assert convert_official.main(['bvit', src, dst]) == 2
    assert 'pass --trust-checkpoint' in capsys.readouterr().err
    assert calls == [] and not osp.exists(dst)
    # the user's explicit say-so unpickles it (and so runs it)
    assert convert_official.main(['bvit', src, dst, '--trust-checkpoint']) == 0
    assert calls == ['echo pwned > /dev/null']


def test_truncated_file_gives_a_clear_error(golden_dir, tmp_path, capsys):
    src = str(tmp_path / 'cut.pth')
    with open(osp.join(golden_dir, 'dense_deit_ti_official.pth'), 'rb') as f:
        blob = f.read()
    with open(src, 'wb') as f:
        f.write(blob[:len(blob) // 2])
    assert convert_official.main(['dense', src, str(tmp_path / 'dst.pth')]) == 2
    assert 'not a readable torch checkpoint (truncated or corrupt?)' in capsys.readouterr().err


def test_other_family_refused(golden_dir, tmp_path, capsys):
    assert convert_official.main(['dense', osp.join(golden_dir, 'bvit_ti_official.pth'),
                                  str(tmp_path / 'dst.pth')]) == 2
    assert "not an authors' 'dense' checkpoint: it looks like a 'bvit'" in \
        capsys.readouterr().err
