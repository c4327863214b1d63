"""FCViT backbone, converter and configs (parity with the released code is in test_parity.py)."""
import glob
import os.path as osp

import pytest
import torch
import torch.nn as nn
from conftest import assert_memory_formats_agree

from visattn_mm.converters.fcvit import convert, looks_like
from visattn_mm.models.backbones.fcvit import FCViT, GlobalContext

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CONFIGS = {arch: osp.join(ROOT, 'configs', 'fcvit', f'fcvit-{arch}_8xb128_in1k.py')
           for arch in ('tiny', 'b12', 'b24', 'b48')}
# exact counts of the released models with their 1000-class head (research/targets.md)
RELEASED_PARAMS = {'tiny': 4_784_752, 'b12': 14_701_832, 'b24': 26_960_232, 'b48': 51_477_032}
TINY_WIDTHS = (32, 64, 160, 320)


pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


@pytest.fixture(scope='module')
def golden_tiny(golden_dir):
    paths = sorted(glob.glob(osp.join(golden_dir, 'fcvit_tiny*.pth')))
    if not paths:
        pytest.fail(f'no fcvit_tiny*.pth golden file in {golden_dir}')
    return paths[0]


def converted_golden(path: str) -> dict:
    data = torch.load(path, map_location='cpu', weights_only=True)
    return {k: v.float() if v.is_floating_point() else v
            for k, v in convert(data['state_dict']).items()}


# ----------------------------------------------------------------------------- arch
def test_arch_names_and_aliases():
    assert FCViT(arch='t').arch_settings == FCViT(arch='TINY').arch_settings
    assert FCViT.arch_zoo['s12'] == FCViT.arch_zoo['b12']
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3))
    assert [len(s) for s in model.stages] == [3, 3, 5, 2]
    assert [model.stages[i][0].norm1.num_channels for i in range(4)] == list(TINY_WIDTHS)
    assert FCViT.arch_zoo['b48']['depths'] == [8, 8, 24, 8]


def test_arch_dict():
    arch = dict(depths=[1, 1, 1, 1], widths=[16, 32, 48, 64], mlp_ratios=[2, 2, 2, 2],
                kernel_size=5)
    model = FCViT(arch=arch, out_indices=(0, 1, 2, 3)).eval()
    assert model.stages[0][0].token_mixer.rounds[0].dwconv.kernel_size == (5, 5)
    outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == [16, 32, 48, 64]


@pytest.mark.parametrize('arch, message', [
    ('huge', r"unknown FCViT arch 'huge'; choose one of \['b12', 'b24', 'b48', 's12', 't', "
             r"'tiny'\]"),
    (dict(depths=[1] * 4, widths=[16] * 4), r"missing keys \['mlp_ratios'\]"),
    (dict(depths=[1] * 4, widths=[16] * 4, mlp_ratios=[1] * 4, heads=2),
     r"unknown keys \['heads'\]"),
    (dict(depths=[1] * 3, widths=[16] * 4, mlp_ratios=[1] * 4), r"arch\['depths'\] needs 4"),
    (dict(depths=[1] * 4, widths=[12] * 4, mlp_ratios=[1] * 4), 'divisible by gc_heads'),
])
def test_arch_errors(arch, message):
    with pytest.raises(ValueError, match=message):
        FCViT(arch=arch)


@pytest.mark.parametrize('arch', list(RELEASED_PARAMS))
def test_config_builds_with_released_param_count(arch, build_model):
    """Each ImageNet config loads, builds, and has exactly the released parameter count."""
    from mmengine import Config

    cfg = Config.fromfile(CONFIGS[arch])
    assert cfg.model.backbone.type == 'visattn_mm.FCViT' and cfg.model.backbone.arch == arch
    assert cfg.custom_imports == dict(imports=['visattn_mm'], allow_failed_imports=False)
    assert cfg.model.backbone.drop_path_rate == (0.2 if arch == 'b48' else 0.1)
    resize = cfg.test_dataloader.dataset.pipeline[1]
    assert resize.type == 'ResizeEdge' and resize.scale == (248 if arch in ('tiny', 'b12') else 235)
    model = build_model(CONFIGS[arch])
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMS[arch]


def test_builds_from_every_toolbox_registry():
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    for registry in (DET_MODELS, SEG_MODELS, CLS_MODELS):
        model = registry.build(dict(type='visattn_mm.FCViT', arch='tiny'))
        assert isinstance(model, FCViT)


# ----------------------------------------------------------------------------- forward
def test_forward_all_stages_odd_size_batch3():
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = model(torch.randn(3, 3, 200, 264))
    assert isinstance(outs, tuple)
    # strides 4/8/16/32 with the size rounded up (convs pad k // 2)
    assert [tuple(o.shape) for o in outs] == [(3, 32, 50, 66), (3, 64, 25, 33),
                                              (3, 160, 13, 17), (3, 320, 7, 9)]


@pytest.mark.parametrize('index', [0, 1, 2, 3, -1, -4])
def test_each_out_index(index):
    model = FCViT(arch='tiny', out_indices=index).eval()
    stage = index % 4
    assert model.out_indices == (stage,)
    with torch.no_grad():
        (out,) = model(torch.randn(3, 3, 37, 53))
    assert tuple(out.shape) == (3, TINY_WIDTHS[stage], -(-37 // 2 ** (stage + 2)),
                                -(-53 // 2 ** (stage + 2)))


def test_smallest_input_and_memory_formats():
    """The channels-last backbone (default) equals the NCHW one (see conftest)."""
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        assert [tuple(o.shape[2:]) for o in model(torch.randn(2, 3, 1, 1))] == [(1, 1)] * 4
    assert_memory_formats_agree(
        lambda **kw: FCViT(arch='tiny', out_indices=(0, 1, 2, 3), **kw), torch.randn(2, 3, 45, 61))


@pytest.mark.parametrize('shape, message', [
    ((1, 4, 32, 32), r'expects input \(B, 3, H, W\), got \(1, 4, 32, 32\)'),
    ((3, 32, 32), r'expects input \(B, 3, H, W\), got \(3, 32, 32\)'),
    ((1, 3, 0, 32), r'needs H, W >= 1, got \(0, 32\)'),
])
def test_input_errors(shape, message):
    with pytest.raises(ValueError, match=message):
        FCViT(arch='tiny')(torch.randn(*shape))


@pytest.mark.parametrize('out_indices', [4, (0, -5), (), ('1',)])
def test_out_indices_errors(out_indices):
    with pytest.raises(ValueError, match=r'out_indices'):
        FCViT(arch='tiny', out_indices=out_indices)


def test_output_norms():
    dense = FCViT(arch='tiny', out_indices=(0, 1, 2, 3))
    for i, width in enumerate(TINY_WIDTHS):
        norm = getattr(dense, f'norm{i}')
        assert isinstance(norm, nn.GroupNorm) and (norm.num_groups, norm.num_channels) == (1, width)
    cls = FCViT(arch='tiny', out_indices=(3,))
    assert [name for name, _ in cls.named_children() if name.startswith('norm')] == ['norm3']
    # the output is the norm of the raw stage map
    raw = []
    dense.stages[1].register_forward_hook(lambda m, args, out: raw.append(out))
    dense.eval()
    with torch.no_grad():
        outs = dense(torch.randn(2, 3, 64, 64))
        torch.testing.assert_close(outs[1], dense.norm1(raw[0]))


@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
def test_global_context_formula(memory_format):
    """GC against the formula written out with einsum (fcvit.md §2), in either memory layout;
    its maps keep the input's layout, and ``add_to`` is ``x + GC(x)``."""
    torch.manual_seed(0)
    gc = GlobalContext(32)
    nn.init.normal_(gc.sim_weight)
    nn.init.normal_(gc.sim_bias)
    x = torch.randn(2, 32, 5, 7)
    g = x.mean(dim=(2, 3)).view(2, 8, 4)
    s = torch.einsum('bkjhw,bkj->bkhw', x.view(2, 8, 4, 5, 7), g) / 2.0  # sqrt(d) = 2
    flat = s.reshape(2, -1)
    s = (s - flat.mean(1).view(2, 1, 1, 1)) / (flat.std(1, unbiased=True).view(2, 1, 1, 1) + 1e-5)
    s = s * gc.sim_weight.view(1, 8, 1, 1) + gc.sim_bias.view(1, 8, 1, 1)
    halves = gc.fc_compete(g.view(2, 32)).view(2, 2, 4)
    c = gc.fc_out(torch.maximum(halves[:, 0], halves[:, 1])).view(2, 8, 4)
    expected = (s.unsqueeze(2) * c.view(2, 8, 4, 1, 1)).reshape(2, 32, 5, 7)
    x = x.contiguous(memory_format=memory_format)
    out, summed = gc(x), gc.add_to(x)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(summed, x + expected)
    for t in (out, summed):
        assert t.is_contiguous(memory_format=memory_format)


def test_every_parameter_gets_a_gradient():
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3))
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


# ----------------------------------------------------------------------------- structure
def test_frozen_stages():
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3), frozen_stages=2)
    model.train()
    frozen = [model.stem, model.stages[0], model.downsamples[0], model.stages[1],
              model.norm0, model.norm1]
    trainable = [model.downsamples[1], model.stages[2], model.downsamples[2], model.stages[3],
                 model.norm2, model.norm3]
    assert all(not m.training for f in frozen for m in f.modules())
    assert all(m.training for t in trainable for m in t.modules())
    bn_before = {name: model.get_submodule(name).running_mean.clone()
                 for name in ('stem.norm', 'downsamples.0.norm', 'downsamples.1.norm')}
    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    assert all(p.grad is None and not p.requires_grad for f in frozen for p in f.parameters())
    assert all(p.grad is not None for t in trainable for p in t.parameters())
    assert torch.equal(model.stem.norm.running_mean, bn_before['stem.norm'])
    assert torch.equal(model.downsamples[0].norm.running_mean, bn_before['downsamples.0.norm'])
    assert not torch.equal(model.downsamples[1].norm.running_mean,
                           bn_before['downsamples.1.norm'])


def test_frozen_stages_zero_one_all_and_errors():
    model = FCViT(arch='tiny', frozen_stages=0)  # the stem only
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert all(p.requires_grad for p in model.stages[0].parameters())
    model = FCViT(arch='tiny', frozen_stages=1)  # the stem and stage 0 (out index 0)
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.downsamples[0].parameters())
    model = FCViT(arch='tiny', out_indices=(3,), frozen_stages=4)
    assert not any(p.requires_grad for p in model.parameters())
    assert all(p.requires_grad for p in FCViT(arch='tiny').parameters())
    with pytest.raises(ValueError, match=r'frozen_stages must be in -1\.\.4'):
        FCViT(arch='tiny', frozen_stages=5)


def test_norm_eval():
    model = FCViT(arch='tiny', norm_eval=True)
    model.train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 4 and not any(bn.training for bn in bns)
    assert model.stages[0][0].training
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(2, 3, 64, 64))
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(bns, before))


def test_with_cp_same_output_and_gradient():
    torch.manual_seed(0)
    plain = FCViT(arch='tiny', out_indices=(0, 1, 2, 3))
    ckpt = FCViT(arch='tiny', out_indices=(0, 1, 2, 3), with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.eval()
    ckpt.eval()  # deterministic BN; checkpointing still applies to inputs with grad
    calls = []  # a pre-hook: the recomputation stops early, before any post-hook
    ckpt.stages[3][0].register_forward_pre_hook(lambda m, args: calls.append(1))
    x = torch.randn(2, 3, 48, 48)
    grads = []
    for model in (plain, ckpt):
        inp = x.clone().requires_grad_()
        outs = model(inp)
        sum((o ** 2).mean() for o in outs).backward()
        grads.append((outs, inp.grad))
    assert len(calls) == 2  # forward + recomputation in backward
    for a, b in zip(grads[0][0], grads[1][0]):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(grads[0][1], grads[1][1])
    with torch.no_grad():
        ckpt(x)  # no grad needed: plain forward, no recomputation
    assert len(calls) == 3


def test_drop_path():
    model = FCViT(arch='tiny', drop_path_rate=0.2)
    blocks = [b for stage in model.stages for b in stage]
    assert blocks[0].drop_path.drop_prob == 0  # (the first block: rate 0, never drops)
    assert blocks[-1].drop_path.drop_prob == pytest.approx(0.2)
    assert blocks[6].drop_path.drop_prob == pytest.approx(0.2 * 6 / 12)
    reference = FCViT(arch='tiny')
    reference.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))  # identity at test time
        model.train()
        # layer scale 1e-5 hides dropped branches; enlarge it to see them
        for block in blocks:
            block.layer_scale_1.fill_(1.0)
        torch.manual_seed(1)
        first = model(x)[0]
        torch.manual_seed(2)
        assert not torch.allclose(first, model(x)[0])


# ----------------------------------------------------------------------------- weights
def test_pretrained_init_cfg_loads_converted_checkpoint(golden_tiny, tmp_path):
    from visattn_mm.converters.cli import main

    dst = str(tmp_path / 'fcvit_tiny_converted.pth')
    assert main(['fcvit', golden_tiny, dst]) == 0
    expected = converted_golden(golden_tiny)
    model = FCViT(arch='tiny', out_indices=(3,),
                  init_cfg=dict(type='Pretrained', checkpoint=dst, prefix='backbone.'))
    model.init_weights()
    state = model.state_dict()
    backbone = {k[len('backbone.'):]: v for k, v in expected.items() if k.startswith('backbone.')}
    assert set(state) == set(backbone)
    for key, value in backbone.items():
        assert torch.equal(state[key], value), key


def test_convert_official_refuses_other_family(golden_dir, tmp_path):
    from visattn_mm.converters.cli import main

    pslt = sorted(glob.glob(osp.join(golden_dir, 'pslt_*.pth')))
    assert pslt, 'no PSLT golden file to refuse'
    assert main(['fcvit', pslt[0], str(tmp_path / 'x.pth')]) == 2
    assert not (tmp_path / 'x.pth').exists()


def test_converter_classification_layout(golden_tiny):
    converted = converted_golden(golden_tiny)
    assert {'head.fc.weight', 'head.fc.bias', 'backbone.norm3.weight'} <= set(converted)
    assert 'backbone.stages.0.0.token_mixer.rounds.1.context.fc_compete.weight' in converted
    assert 'backbone.downsamples.2.proj.weight' in converted
    assert all(k.startswith(('backbone.', 'head.fc.')) for k in converted)


def test_converter_detection_layout(golden_tiny):
    """A det/seg checkpoint: backbone keys under ``backbone.``, norms at network positions."""
    authors = torch.load(golden_tiny, map_location='cpu', weights_only=True)['state_dict']
    det = {'backbone.' + k: v.float() for k, v in authors.items()
           if not k.startswith(('norm.', 'head.'))}
    for position, width in zip((0, 2, 4, 6), TINY_WIDTHS):
        det[f'backbone.norm{position}.weight'] = torch.full((width,), 2.0 + position)
        det[f'backbone.norm{position}.bias'] = torch.zeros(width)
    det['neck.lateral_convs.0.conv.weight'] = torch.ones(1)
    assert looks_like(det)
    converted = convert(det)
    assert torch.equal(converted['neck.lateral_convs.0.conv.weight'], torch.ones(1))
    model = FCViT(arch='tiny', out_indices=(0, 1, 2, 3))
    model.load_state_dict({k[len('backbone.'):]: v for k, v in converted.items()
                           if k.startswith('backbone.')}, strict=True)
    assert torch.equal(model.norm2.weight, torch.full((160,), 6.0))


def test_converter_rejects_unknown_block_key(golden_tiny):
    authors = dict(torch.load(golden_tiny, map_location='cpu', weights_only=True)['state_dict'])
    authors['network.0.0.token_mixer.spatial_att.0.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='unexpected key in an FCViT block'):
        convert(authors)
