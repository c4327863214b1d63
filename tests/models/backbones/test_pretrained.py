"""`init_cfg=dict(type='Pretrained', ...)` loads a checkpoint only if it fits the backbone."""
import os.path as osp

import pytest
import torch
from conftest import build_in_scope

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


def test_checkpoint_without_num_batches_tracked_loads(checkpoints, tmp_path):
    """BatchNorm's step counter is not a weight: files saved without it (older torch, other
    frameworks) load."""
    state = torch.load(checkpoints['pslt_det'], weights_only=True)['state_dict']
    trimmed = {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}
    assert len(trimmed) < len(state)
    path = str(tmp_path / 'no_nbt.pth')
    torch.save({'state_dict': trimmed}, path)
    model = PSLT(arch='base', out_indices=(0, 1, 2, 3), init_cfg=_pretrained(path))
    model.init_weights()
    key = 'stem.0.norm.weight'
    assert torch.equal(model.state_dict()[key], state['backbone.' + key])


def test_bias_tables_resized_for_another_window(checkpoints):
    """A window-7 checkpoint fine-tunes at window 5: the 13x13 bias tables are resized to 9x9
    by WindowMSA's load hook (a log line says so), everything else loads as it is."""
    model = PSLT(arch=dict(embed_dims=36, depths=(3, 3, 10, 3), num_heads=(4, 8),
                           window_size=5),
                 out_indices=(0, 1, 2, 3), init_cfg=_pretrained(checkpoints['pslt_det']))
    model.init_weights()
    state = torch.load(checkpoints['pslt_det'], weights_only=True)['state_dict']
    tables = {k: v for k, v in model.state_dict().items()
              if k.endswith('relative_position_bias_table')}
    assert tables and all(v.shape[0] == 81 for v in tables.values())
    for key, value in tables.items():
        source = state['backbone.' + key]  # (13 * 13 offsets, heads), row-major (dh, dw)
        grid = source.T.reshape(1, -1, 13, 13)
        expected = torch.nn.functional.interpolate(grid, size=(9, 9), mode='bicubic')
        torch.testing.assert_close(value, expected.reshape(-1, 81).T)
    key = 'stages.2.blocks.0.branches.0.attn.w_msa.qkv.weight'
    assert torch.equal(model.state_dict()[key], state['backbone.' + key])


@pytest.mark.parametrize('backbone', [dict(type='visattn_mm.PSLT', arch='tiny'),
                                      dict(type='visattn_mm.FCViT', arch='tiny')])
def test_layer_depth_for_layer_wise_lr_decay(backbone):
    """mmpretrain's LearningRateDecayOptimWrapperConstructor reads ``get_layer_depth``: stem,
    the four stages and the rest get six distinct rates."""
    from mmengine.optim import build_optim_wrapper

    model = build_in_scope(dict(type='ImageClassifier', backbone=backbone,
                              neck=dict(type='GlobalAveragePooling'),
                              head=dict(type='LinearClsHead', num_classes=10,
                                        in_channels=1)))
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5)))
    lrs = sorted({round(g['lr'], 10) for g in wrapper.optimizer.param_groups})
    assert len(lrs) == 6 and lrs[-1] == pytest.approx(1e-3)
    depth = model.backbone.get_layer_depth
    assert depth('backbone.stem.0.conv.weight' if backbone['type'].endswith('PSLT')
                 else 'backbone.stem.conv.weight', 'backbone.')[0] == 0
    assert depth('backbone.stages.2.blocks.0.x', 'backbone.') == (3, 6)
    assert depth('head.fc.weight', 'backbone.') == (5, 6)
