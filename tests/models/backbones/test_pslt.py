"""PSLT backbone (``visattn_mm.models.backbones.pslt``) and its converter."""
import os.path as osp

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm
from conftest import assert_memory_formats_agree

from visattn_mm.models.backbones import PSLT
from visattn_mm.models.backbones.pslt import LadderBlock, PatchMerging

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
GOLDEN_TINY = 'pslt_tiny_official.pth'
# a small custom arch for the structural tests (C0 = 6: 16-dim branches in stage 3)
SMALL = dict(embed_dims=6, depths=(2, 1, 2, 1), num_heads=(2, 2))


def _small(**kwargs) -> PSLT:
    torch.manual_seed(0)
    return PSLT(SMALL, **kwargs)


# ----------------------------------------------------------------------------- arch
def test_arch_names_and_aliases():
    for names, c0 in ((('tiny', 't', 'Tiny'), 24), (('base', 'b'), 36), (('large', 'l'), 48)):
        for name in names:
            assert PSLT.arch_zoo[name.lower()]['embed_dims'] == c0
    model = PSLT('t')
    assert model.channels == (48, 96, 192, 384)
    assert [len(s.blocks) for s in model.stages] == [2, 2, 10, 3]
    assert isinstance(model.stages[3].downsample, PatchMerging)
    assert all(isinstance(b, LadderBlock) for b in model.stages[2].blocks)


def test_arch_dict_and_errors():
    assert _small().channels == (12, 24, 48, 96)
    with pytest.raises(ValueError, match=r"unknown PSLT arch 'huge'; choose one of \['b', "
                                         r"'base', 'l', 'large', 't', 'tiny'\]"):
        PSLT('huge')
    with pytest.raises(ValueError, match=r"missing keys \['num_heads'\]"):
        PSLT(dict(embed_dims=6, depths=(1, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"unknown keys \['mlp_ratio'\]"):
        PSLT(dict(SMALL, mlp_ratio=4))
    with pytest.raises(ValueError, match='must split into 3 branches of 4 heads'):
        PSLT(dict(embed_dims=8, depths=(1, 1, 1, 1), num_heads=(4, 8)))


def test_default_init():
    model = _small(final_norm=True)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, torch.nn.LayerNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    linear = model.stages[3].blocks[0].fusion.proj.weight  # 96 x 96
    assert 0.018 < linear.std() < 0.022  # trunc-normal, std 0.02
    bias_table = model.stages[2].blocks[0].branches[0].attn.w_msa.relative_position_bias_table
    assert 0.015 < bias_table.std() < 0.025


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize('size', [(200, 264), (416, 288)])
def test_forward_shapes_any_size(size):
    model = _small(out_indices=(0, 1, 2, 3)).eval()
    H, W = size
    with torch.no_grad():
        outs = model(torch.randn(3, 3, H, W))
    assert isinstance(outs, tuple) and len(outs) == 4
    for i, out in enumerate(outs):
        stride = 2 ** (i + 2)
        assert out.shape == (3, model.channels[i], -(-H // stride), -(-W // stride))


@pytest.mark.parametrize('index', [0, 1, 2, 3])
def test_each_out_index_picks_its_stage(index):
    full = _small(out_indices=(0, 1, 2, 3)).eval()
    single = _small(out_indices=(index - 4,)).eval()  # the negative spelling of the same stage
    single.load_state_dict(full.state_dict())
    assert single.out_indices == (index,)
    x = torch.randn(3, 3, 72, 104)
    with torch.no_grad():
        (out,) = single(x)
        torch.testing.assert_close(out, full(x)[index])


def test_out_indices_are_normalised_and_checked():
    assert _small(out_indices=(-1, 0)).out_indices == (0, 3)
    assert _small(out_indices=2).out_indices == (2,)
    with pytest.raises(ValueError, match=r'out_indices must be stage indices in -4..3 .* got 4'):
        _small(out_indices=(0, 4))
    with pytest.raises(ValueError, match='twice'):
        _small(out_indices=(3, -1))
    with pytest.raises(ValueError, match='empty'):
        _small(out_indices=())


def test_final_norm_is_layernorm_over_channels():
    model = _small(final_norm=True).eval()
    plain = _small().eval()
    plain.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        (normed,), (raw,) = model(x), plain(x)
    expected = torch.nn.functional.layer_norm(raw.permute(0, 2, 3, 1), (96,),
                                              model.norm3.weight, model.norm3.bias)
    torch.testing.assert_close(normed, expected.permute(0, 3, 1, 2))


def test_ladder_shift_off_changes_only_shifted_stages():
    model = _small(out_indices=(2, 3)).eval()
    no_shift = _small(out_indices=(2, 3), ladder_shift=(True, False)).eval()
    no_shift.load_state_dict(model.state_dict())
    assert no_shift.stages[3].blocks[0].branches[2].attn.shift_size == 0
    assert model.stages[3].blocks[0].branches[1].attn.shift_size == -3
    assert model.stages[3].blocks[0].branches[2].attn.shift_size == 3
    with torch.no_grad():
        x = torch.randn(1, 3, 256, 320)  # stage 4 is 8x10: shifted by default
        a, b = model(x), no_shift(x)
        assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
        x = torch.randn(1, 3, 224, 224)  # stage 4 is 7x7: one window, never shifted
        assert torch.equal(model(x)[1], no_shift(x)[1])
    with pytest.raises(ValueError, match='one bool per ladder stage'):
        _small(ladder_shift=(True,))


# ----------------------------------------------------------------------------- training
def _bn_stats(module):
    return [m.running_mean.clone() for m in module.modules() if isinstance(m, _BatchNorm)]


@pytest.mark.parametrize('frozen_stages', [-1, 0, 2, 4])
def test_frozen_stages(frozen_stages):
    model = _small(frozen_stages=frozen_stages, final_norm=True, out_indices=(0, 1, 2, 3))
    model.train()
    frozen = [model.stem] if frozen_stages >= 0 else []
    frozen += list(model.stages[:max(frozen_stages, 0)])
    if frozen_stages == 4:
        frozen.append(model.norm3)
    trainable = [m for m in [model.stem, *model.stages] if all(m is not f for f in frozen)]
    before = [_bn_stats(m) for m in (model.stem, *model.stages)]

    outs = model(torch.randn(2, 3, 64, 64))
    loss = sum(o.sum() for o in outs if o.requires_grad)
    if frozen_stages < 4:
        loss.backward()
    for module in frozen:
        assert not module.training
        assert all(not p.requires_grad and p.grad is None for p in module.parameters())
    for module in trainable:
        assert module.training and all(p.requires_grad for p in module.parameters())
    after = [_bn_stats(m) for m in (model.stem, *model.stages)]
    for module, old, new in zip((model.stem, *model.stages), before, after):
        unchanged = all(torch.equal(a, b) for a, b in zip(old, new))
        assert unchanged == any(module is f for f in frozen)
    with pytest.raises(ValueError, match=r'frozen_stages must be in -1..4'):
        _small(frozen_stages=5)


def test_norm_eval_keeps_bn_statistics():
    model = _small(norm_eval=True).train()
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(not m.training for m in bns)
    assert model.stages[2].blocks[0].branches[0].norm1.training  # LayerNorms are not affected
    before = _bn_stats(model)
    model(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(a, b) for a, b in zip(before, _bn_stats(model)))


def test_with_cp_gives_the_same_output_and_gradients():
    model = _small(out_indices=(0, 3)).eval()  # eval: the same BN statistics in both runs
    cp_model = _small(out_indices=(0, 3), with_cp=True).eval()
    cp_model.load_state_dict(model.state_dict())
    assert all(stage.with_cp for stage in cp_model.stages)
    x = torch.randn(2, 3, 64, 96, requires_grad=True)
    grads = []
    for m in (model, cp_model):
        x.grad = None
        outs = m(x)
        sum(o.square().sum() for o in outs).backward()
        grads.append((outs, x.grad.clone()))
    for a, b in zip(grads[0][0], grads[1][0]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_drop_path_over_ladder_blocks_only():
    model = _small(drop_path_rate=0.3)
    rates = [b.branches[0].drop_path for s in model.stages[2:] for b in s.blocks]
    assert [r.drop_prob for r in rates] == pytest.approx([0, 0.15, 0.3])  # linspace(0, .3, 3)
    assert all(getattr(r, 'drop_prob', 0) == rates[-1].drop_prob for r in
               (b.drop_path for b in model.stages[3].blocks[-1].branches))
    x = torch.randn(2, 3, 64, 64)
    model.train()
    torch.manual_seed(1)
    a = model(x)[0]
    torch.manual_seed(2)
    b = model(x)[0]
    assert not torch.allclose(a, b)  # random paths dropped in training
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0])


# ----------------------------------------------------------------------------- errors
def test_input_errors():
    model = _small()
    with pytest.raises(ValueError, match=r'3 input channels, got shape \(1, 4, 64, 64\)'):
        model(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match='input 31x64 is too small for PSLT: each side must '
                                         'be at least 32'):
        model(torch.randn(1, 3, 31, 64))
    assert _small(in_channels=1).eval()(torch.randn(1, 1, 32, 32))[0].shape == (1, 96, 1, 1)


# ----------------------------------------------------------------------------- converter
def test_pretrained_init_cfg_loads_converted_checkpoint(golden_dir, tmp_path):
    from visattn_mm.converters import convert
    data = torch.load(osp.join(golden_dir, GOLDEN_TINY), map_location='cpu', weights_only=True)
    converted = {k: v.float() for k, v in convert('pslt', data['state_dict']).items()}
    path = str(tmp_path / 'pslt_tiny_converted.pth')
    torch.save({'state_dict': converted}, path)

    model = PSLT('tiny', final_norm=True,
                 init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    ours = model.state_dict()
    backbone = {k[len('backbone.'):]: v for k, v in converted.items()
                if k.startswith('backbone.')}
    assert set(backbone) == set(ours)
    for key, value in backbone.items():
        assert torch.equal(ours[key], value), key


def test_convert_tool_on_both_layouts(golden_dir, tmp_path):
    from visattn_mm.converters import cli as convert_official

    for name in ('pslt_tiny_official.pth', 'pslt_det_official.pth'):
        dst = str(tmp_path / name)
        assert convert_official.main(['pslt', osp.join(golden_dir, name), dst]) == 0
        state_dict = torch.load(dst, weights_only=True)['state_dict']
        assert all(k.startswith(('backbone.', 'head.fc.')) for k in state_dict)
        assert not any('relative_position_index' in k or 'attn_mask' in k for k in state_dict)
    assert 'head.fc.weight' in torch.load(str(tmp_path / GOLDEN_TINY),
                                          weights_only=True)['state_dict']
    dst = str(tmp_path / 'wrong.pth')
    assert convert_official.main(['pslt', osp.join(golden_dir, 'fcvit_tiny_official.pth'),
                                  dst]) == 2


def test_convert_detector_checkpoint_keeps_other_keys(golden_dir):
    from visattn_mm.converters.pslt import convert, looks_like
    data = torch.load(osp.join(golden_dir, 'pslt_det_official.pth'), weights_only=True)
    detector = {'backbone.' + k: v for k, v in data['state_dict'].items()}
    detector['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    detector['backbone.layers.0.blocks.0.total_ops'] = torch.zeros(1)  # thop counters
    assert looks_like(detector)
    out = convert(detector)
    assert 'neck.lateral_convs.0.conv.weight' in out
    assert 'backbone.stages.2.blocks.0.branches.1.attn.w_msa.qk.weight' in out
    assert 'backbone.stages.3.downsample.reduction.weight' in out
    assert 'backbone.stages.2.downsample.expand.conv.weight' in out
    assert not any('total_ops' in k for k in out)
    model = PSLT('base', out_indices=(0, 1, 2, 3))
    model.load_state_dict({k[len('backbone.'):]: v.float() for k, v in out.items()
                           if k.startswith('backbone.')}, strict=True)
    with pytest.raises(ValueError, match="unexpected PSLT backbone key: 'head_dist.weight'"):
        convert({**data['state_dict'], 'head_dist.weight': torch.zeros(1)})


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize('arch,params', [('tiny', 4_298_988), ('base', 9_257_302),
                                         ('large', 16_099_312)])
def test_configs_build_classifiers_with_the_released_parameter_count(arch, params, build_model):
    from mmengine import Config
    config = osp.join(ROOT, 'configs', 'pslt', f'pslt-{arch}_8xb128_in1k.py')
    cfg = Config.fromfile(config)
    assert cfg.model.backbone.type == 'visattn_mm.PSLT' and cfg.model.backbone.arch == arch
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(5e-4 * 8 * 128 / 512)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.025
    assert cfg.train_cfg.max_epochs == 300 and cfg.param_scheduler[0].end == 5
    assert cfg.custom_hooks[0].momentum == pytest.approx(1 - 0.99996)
    # the released classifier's count to the unit: ImageClassifier, GAP neck, LinearClsHead
    model = build_model(config)
    assert sum(p.numel() for p in model.parameters()) == params
    head_and_norm = model.head.fc.weight.numel() + model.head.fc.bias.numel() + 2 * 16 * (
        PSLT.arch_zoo[arch]['embed_dims'])
    backbone = PSLT(arch)  # the detection backbone: no final norm
    assert sum(p.numel() for p in backbone.parameters()) == params - head_and_norm


def test_memory_formats_agree():
    """The channels-last PSLT (default) equals the NCHW one, shifted windows included."""
    assert_memory_formats_agree(lambda **kw: PSLT(SMALL, out_indices=(0, 1, 2, 3), final_norm=True,
                                                  drop_path_rate=0., **kw),
                                torch.randn(2, 3, 96, 128))
