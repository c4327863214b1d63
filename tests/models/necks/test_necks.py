"""SimpleFeaturePyramid (``visattn_mm.models.necks.simple_fpn``), ViTDet's pyramid for ViTs."""
import importlib

import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope

from visattn_mm.models.necks import SimpleFeaturePyramid
from visattn_mm.registry import MODELS

C = 32  # a small backbone width for the structural tests
VITDET = [C // 4, C // 2, C, C]


pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


def _neck(**kwargs) -> SimpleFeaturePyramid:
    torch.manual_seed(0)
    args = dict(backbone_channel=C, in_channels=VITDET, out_channels=16)
    args.update(kwargs)
    return SimpleFeaturePyramid(**args)


@pytest.mark.parametrize('grid', [(2, 2), (5, 7), (8, 8), (13, 6)])
@pytest.mark.parametrize('num_outs', [4, 5, 6])
def test_output_shapes(grid, num_outs):
    """Strides 4, 8, 16, 32 from the stride-16 map; further levels halve (ceil) the last."""
    neck = _neck(num_outs=num_outs).eval()
    h, w = grid
    with torch.no_grad():
        outs = neck(torch.randn(2, C, h, w))
    assert isinstance(outs, tuple) and len(outs) == num_outs
    sides = [(4 * h, 4 * w), (2 * h, 2 * w), (h, w), (h // 2, w // 2)]
    for _ in range(num_outs - 4):
        sides.append((-(-sides[-1][0] // 2), -(-sides[-1][1] // 2)))
    assert [tuple(o.shape) for o in outs] == [(2, 16, *s) for s in sides]


def test_stride_16_input_from_image_sizes():
    """As behind a patch-16 ViT: an image padded to 32 gives strides 4..32 exactly; the
    extra level rounds up (max-pool with kernel 1)."""
    neck = _neck(num_outs=5).eval()
    for H, W in ((224, 224), (320, 480), (800, 1344)):
        with torch.no_grad():
            outs = neck((torch.randn(1, C, H // 16, W // 16),))  # a backbone's tuple
        for level, out in enumerate(outs):
            stride = 2 ** (level + 2)
            assert out.shape[-2:] == (-(-H // stride), -(-W // stride))


def test_structure_and_custom_widths():
    neck = _neck(in_channels=[6, 12, C, C], out_channels=8)
    stride4, stride8, identity, pool = neck.scale_layers
    assert [m.out_channels for m in (stride4[0], stride4[3], stride8)] == [12, 6, 12]
    assert isinstance(stride4[2], torch.nn.GELU)
    assert isinstance(identity, torch.nn.Identity) and isinstance(pool, torch.nn.MaxPool2d)
    assert [m.conv.in_channels for m in neck.lateral_convs] == [6, 12, C, C]
    assert all(m.conv.kernel_size == (1, 1) for m in neck.lateral_convs)
    assert all(m.conv.kernel_size == (3, 3) for m in neck.fpn_convs)
    # the default norm: LayerNorm over channels (ViTDet), so the convs have no bias
    norm = neck.lateral_convs[0].norm
    assert type(norm).__name__ == 'LayerNorm2d' and norm.eps == 1e-6
    assert type(stride4[1]).__name__ == 'LayerNorm2d'
    assert neck.lateral_convs[0].conv.bias is None
    assert not neck.fpn_convs[0].with_activation  # act_cfg=None, as ViTDet


def test_group_norm_option():
    neck = _neck(norm_cfg=dict(type='GN', num_groups=4)).eval()
    assert isinstance(neck.lateral_convs[0].norm, torch.nn.GroupNorm)
    assert isinstance(neck.scale_layers[0][1], torch.nn.GroupNorm)
    with torch.no_grad():
        outs = neck(torch.randn(1, C, 4, 4))
    assert outs[0].shape == (1, 16, 16, 16)


def test_layer_norm_is_over_channels():
    """Each output pixel's channel vector is normalised: mean 0, variance 1 before the affine."""
    neck = _neck().eval()
    with torch.no_grad():
        y = neck.lateral_convs[2].norm(torch.randn(2, 16, 3, 5) * 7 + 3)
    assert torch.allclose(y.mean(dim=1), torch.zeros(2, 3, 5), atol=1e-5)
    assert torch.allclose(y.var(dim=1, unbiased=False), torch.ones(2, 3, 5), atol=1e-3)


@pytest.mark.parametrize('in_channels, match', [
    ([8, 16, 32], r'needs 4 entries; got \[8, 16, 32\]'),
    ([8, 16, 32, 16], r'in_channels\[2:\] must be \[32, 32\]; got \[8, 16, 32, 16\]\. '
                      r'ViTDet uses in_channels=\[8, 16, 32, 32\]'),
    ([8, 16, 24, 32], r'keep the backbone\'s 32 channels'),
    ([0, 16, 32, 32], 'channels must be positive'),
])
def test_channel_errors(in_channels, match):
    with pytest.raises(ValueError, match=match):
        SimpleFeaturePyramid(C, in_channels, 16)


def test_num_outs_and_start_level_errors():
    with pytest.raises(ValueError, match='num_outs must be at least 4'):
        _neck(num_outs=3)
    with pytest.raises(ValueError, match=r'num_outs must be at least 2 \(the scales from '
                                         r'start_level 2 to stride 32\); got 1'):
        _neck(start_level=2, num_outs=1)
    with pytest.raises(ValueError, match=r'start_level must be 0 \(stride 4\) to 3'):
        _neck(start_level=4)


def test_start_level_for_retinanet():
    """start_level=1, num_outs=5: strides 8 to 128 and no stride-4 branch at all."""
    neck = _neck(start_level=1, num_outs=5).eval()
    assert len(neck.scale_layers) == len(neck.lateral_convs) == len(neck.fpn_convs) == 3
    assert isinstance(neck.scale_layers[0], torch.nn.ConvTranspose2d)  # stride 8
    assert neck.lateral_convs[0].conv.in_channels == C // 2
    with torch.no_grad():
        outs = neck(torch.randn(1, C, 50, 84))  # an 800x1344 image
    assert [tuple(o.shape[-2:]) for o in outs] == [(100, 168), (50, 84), (25, 42), (13, 21),
                                                   (7, 11)]
    # the same weights give the same levels as the full pyramid's
    full = _neck(num_outs=6).eval()
    full_state = full.state_dict()
    for key, value in neck.state_dict().items():
        module, index, rest = key.split('.', 2)
        value.copy_(full_state[f'{module}.{int(index) + 1}.{rest}'])
    x = torch.randn(1, C, 6, 4)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(neck(x), full(x)[1:]))


def test_input_channel_error():
    neck = _neck()
    with pytest.raises(ValueError, match=r"expects a \(B, 32, h, w\) map \(backbone_channel=32\); "
                                         r"got shape \(1, 48, 4, 4\)"):
        neck(torch.randn(1, 48, 4, 4))
    with pytest.raises(ValueError, match=r"out_type='featmap'"):
        neck((torch.randn(1, C),))  # cls tokens, not a map


def test_gradients_reach_every_parameter_and_the_input():
    neck = _neck(num_outs=5).train()
    x = torch.randn(2, C, 6, 4, requires_grad=True)
    outs = neck([x])
    sum(o.square().mean() for o in outs).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in neck.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic_in_eval():
    neck = _neck().eval()
    x = torch.randn(1, C, 4, 6)
    with torch.no_grad():
        a, b = neck(x), neck(x)
    assert all(torch.equal(p, q) for p, q in zip(a, b))


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_builds_from_each_toolbox(scope):
    """The scoped name and the default LN2d norm resolve in every toolbox's default scope
    (only mmpretrain registers 'LN2d' itself)."""
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        init_default_scope(scope)
        neck = registry.build(dict(type='visattn_mm.SimpleFeaturePyramid', backbone_channel=C,
                                   in_channels=VITDET, out_channels=16, num_outs=5))
    assert type(neck) is MODELS.get('SimpleFeaturePyramid')
    assert type(neck.lateral_convs[0].norm).__name__ == 'LayerNorm2d'


def test_behind_bvit():
    """A BViT with out_type='featmap' feeds the pyramid directly."""
    from visattn_mm.models.backbones import BViT
    torch.manual_seed(0)
    backbone = BViT(dict(embed_dims=32, num_layers=2, num_heads=2, head_dims=16,
                         feedforward_channels=64), out_indices=(1,), out_type='featmap').eval()
    neck = _neck(num_outs=5).eval()
    with torch.no_grad():
        outs = neck(backbone(torch.randn(1, 3, 96, 160)))
    assert [o.shape[-2:] for o in outs] == [(24, 40), (12, 20), (6, 10), (3, 5), (2, 3)]
