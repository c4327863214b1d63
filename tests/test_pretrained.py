"""`init_cfg=dict(type='Pretrained', ...)` loads a checkpoint only if it fits the backbone."""
import os.path as osp

import pytest
import torch

from visattn_mm.converters import convert
from visattn_mm.models.backbones import FCViT, PSLT


@pytest.fixture(scope='module')
def checkpoints(golden_dir, tmp_path_factory):
    """Converted (package layout) and raw (authors' layout) checkpoints from the golden files."""
    out = tmp_path_factory.mktemp('ckpt')
    paths = {}
    for name, family, file in (('pslt_det', 'pslt', 'pslt_det_official.pth'),
                               ('pslt_tiny', 'pslt', 'pslt_tiny_official.pth'),
                               ('fcvit_tiny', 'fcvit', 'fcvit_tiny_official.pth')):
        raw = torch.load(osp.join(golden_dir, file), weights_only=True)['state_dict']
        raw = {k: v.float() for k, v in raw.items()}
        paths[name] = str(out / f'{name}.pth')
        torch.save({'state_dict': convert(family, raw)}, paths[name])
        paths[name + '_raw'] = str(out / f'{name}_raw.pth')
        torch.save({'state_dict': raw}, paths[name + '_raw'])
    return paths


def _pretrained(path, prefix='backbone.'):
    return dict(type='Pretrained', checkpoint=path, prefix=prefix)


def test_fitting_checkpoint_loads(checkpoints):
    model = PSLT(arch='base', out_indices=(0, 1, 2, 3),
                 init_cfg=_pretrained(checkpoints['pslt_det']))
    model.init_weights()
    state = torch.load(checkpoints['pslt_det'], weights_only=True)['state_dict']
    for key, value in model.state_dict().items():
        assert torch.equal(value, state['backbone.' + key]), key


def test_dense_fcvit_takes_a_classification_checkpoint(checkpoints):
    # norm0-2 do not exist in a classifier: they keep their initial values, as released
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3),
                  init_cfg=_pretrained(checkpoints['fcvit_tiny']))
    model.init_weights()
    state = torch.load(checkpoints['fcvit_tiny'], weights_only=True)['state_dict']
    for key, value in model.state_dict().items():
        if key.split('.')[0] in ('norm0', 'norm1', 'norm2'):
            assert key not in state
        else:
            assert torch.equal(value, state['backbone.' + key]), key


def test_other_arch_is_refused(checkpoints):
    model = PSLT(arch='base', init_cfg=_pretrained(checkpoints['pslt_tiny']))
    with pytest.raises(ValueError, match=r'does not fit PSLT.*have other shapes'):
        model.init_weights()


def test_other_family_is_refused(checkpoints):
    model = PSLT(arch='tiny', init_cfg=_pretrained(checkpoints['fcvit_tiny']))
    with pytest.raises(ValueError, match=r'does not fit PSLT.*tensors are missing'):
        model.init_weights()


def test_unconverted_authors_checkpoint_says_how_to_convert(checkpoints):
    model = FCViT(arch='tiny', init_cfg=_pretrained(checkpoints['fcvit_tiny_raw'], prefix=None))
    with pytest.raises(ValueError, match=r"unconverted authors' 'fcvit'.*convert_official"):
        model.init_weights()


def test_wrong_prefix_is_refused(checkpoints):
    model = PSLT(arch='base', init_cfg=_pretrained(checkpoints['pslt_det'], prefix='encoder.'))
    with pytest.raises(ValueError, match=r"no tensors under the prefix 'encoder\.'.*backbone\."):
        model.init_weights()
