"""The fused inference path of conv -> GELU -> BN units equals the plain modules."""
import pytest
import torch
from torch import nn

from visattn_mm.models.backbones.pslt import PSLT, LightMlp, MV2BlockSE
from visattn_mm.models.layers import ConvGeluNorm, run_conv_units


def randomise_bns(model: nn.Module) -> nn.Module:
    """Running statistics and affine far from the identity, so that a wrong fold shows."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * .5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 2 + .2)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + .5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * .3)
    return model


def fused_and_plain(model: nn.Module, x: torch.Tensor):
    model.eval()
    with torch.no_grad():  # fused
        fused = model(x)
    with torch.enable_grad():  # autograd records: the plain modules
        plain = model(x)
    return fused, plain


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('block', [
    lambda: MV2BlockSE(16, 16),                     # shortcut
    lambda: MV2BlockSE(16, 24, stride=2),           # strided depthwise
    lambda: LightMlp(12, 12),                       # convs with bias
], ids=['mv2', 'mv2-stride2', 'light-mlp'])
def test_block_fused_equals_plain(block, memory_format, one_thread):
    torch.manual_seed(0)
    model = randomise_bns(block()).to(memory_format=memory_format)
    if isinstance(model, LightMlp):
        x = torch.randn(2, 9, 11, 12)  # (B, H, W, C)
    else:
        x = torch.randn(2, 16, 9, 11).to(memory_format=memory_format)
    fused, plain = fused_and_plain(model, x)
    assert fused.shape == plain.shape
    assert rel(fused, plain) < 1e-5


def test_fused_path_is_taken_and_folds_two_bns(monkeypatch, one_thread):
    model = randomise_bns(MV2BlockSE(8, 8)).eval()
    calls = {'conv': 0, 'norm': 0}
    mkldnn = torch.ops.mkldnn

    class CountingOps:  # torch.ops.mkldnn stand-in that counts the fused convs
        @staticmethod
        def _convolution_pointwise(*args):
            calls['conv'] += 1
            return mkldnn._convolution_pointwise(*args)

        def __getattr__(self, name):  # the other ops (the SE's Linears)
            return getattr(mkldnn, name)

    monkeypatch.setattr(torch.ops, 'mkldnn', CountingOps())
    for unit in (model.expand, model.depthwise, model.project):
        unit.norm.register_forward_hook(lambda *_: calls.__setitem__('norm', calls['norm'] + 1))
    with torch.no_grad():
        model(torch.randn(1, 8, 6, 6))
    # three convs, one BN left (after the expand GELU, before the padded depthwise conv)
    assert calls == {'conv': 3, 'norm': 1}


def test_training_and_other_norms_take_the_plain_modules(one_thread):
    unit = ConvGeluNorm(4, 6, 1, norm_cfg=dict(type='GN', num_groups=2)).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        assert not unit.fusable(x)  # no BatchNorm to fold
        torch.testing.assert_close(unit(x), unit.norm(unit.act(unit.conv(x))))
    bn_unit = ConvGeluNorm(4, 6, 1)
    with torch.no_grad():
        assert not bn_unit.train().fusable(x)  # batch statistics
        assert bn_unit.eval().fusable(x)
        assert not bn_unit.fusable(x.double())
    assert not bn_unit.fusable(x)  # autograd records


@pytest.mark.parametrize('chunk_bytes', [None, 1])  # 1: one image per MV2 block's chunk
def test_pslt_fused_equals_plain(chunk_bytes, monkeypatch, one_thread):
    from visattn_mm.models.layers import fused_inference
    if chunk_bytes:
        monkeypatch.setattr(fused_inference, 'HIDDEN_CHUNK_BYTES', chunk_bytes)
    torch.manual_seed(0)
    model = randomise_bns(PSLT(arch=dict(embed_dims=12, depths=(2, 1, 2, 1), num_heads=(2, 2)),
                               out_indices=(0, 1, 2, 3)))
    fused, plain = fused_and_plain(model, torch.randn(2, 3, 96, 72))
    for a, b in zip(fused, plain):
        assert a.is_contiguous() and rel(a, b) < 1e-5


def test_run_conv_units_folds_only_into_1x1(one_thread):
    # a BN before a padded 3x3 conv must stay (the pad would see its shift)
    units = [randomise_bns(ConvGeluNorm(4, 8, 1)), randomise_bns(ConvGeluNorm(8, 8, 3)),
             randomise_bns(ConvGeluNorm(8, 4, 1, act=False))]
    x = torch.randn(2, 4, 7, 7)
    for u in units:
        u.eval()
    with torch.no_grad():
        fused = run_conv_units(x, units)
        plain = x
        for u in units:
            plain = u.norm(u.act(u.conv(plain)) if u.act is not None else u.conv(plain))
    assert rel(fused, plain) < 1e-5


class CountingMkldnn:
    """A torch.ops.mkldnn stand-in that counts the oneDNN matmuls."""

    def __init__(self):
        self.ops, self.linear_calls = torch.ops.mkldnn, 0

    def _linear_pointwise(self, *args):
        self.linear_calls += 1
        return self.ops._linear_pointwise(*args)

    def __getattr__(self, name):
        return getattr(self.ops, name)


@pytest.fixture
def counting_mkldnn(monkeypatch):
    ops = CountingMkldnn()
    monkeypatch.setattr(torch.ops, 'mkldnn', ops)
    return ops


@pytest.mark.parametrize('ffn_cfg, onednn', [
    (dict(), True),
    (dict(act_cfg=dict(type='ReLU')), True),
    (dict(layer_scale_init_value=0.5), True),
    (dict(dropout_layer=dict(type='DropPath', drop_prob=0.3)), True),  # identity at eval
    (dict(act_cfg=dict(type='SiLU')), False),  # no oneDNN post-op here: the layers as built
], ids=['gelu', 'relu', 'layer-scale', 'drop-path', 'silu'])
def test_chunked_ffn_equals_mmcv_ffn(ffn_cfg, onednn, counting_mkldnn, monkeypatch, one_thread):
    from mmcv.cnn.bricks.transformer import FFN

    from visattn_mm.models.layers import fused_inference, ffn_residual
    monkeypatch.setattr(fused_inference, 'FFN_CHUNK_BYTES', 4 * 40 * 8)  # chunks of 64 rows
    torch.manual_seed(0)
    ffn = FFN(24, 40, num_fcs=2, **ffn_cfg).eval()
    x, identity = torch.randn(2, 100, 24), torch.randn(2, 100, 24)
    calls = []
    ffn.layers.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        plain = identity + ffn.gamma2(ffn.layers(x))
        calls.clear()
        chunked = ffn_residual(ffn, x, identity)
    assert chunked.shape == plain.shape and rel(chunked, plain) < 1e-6
    # 200 rows in chunks of 64: 4 chunks, two oneDNN matmuls each (or the layers 4 times)
    assert (counting_mkldnn.linear_calls, len(calls)) == ((8, 0) if onednn else (0, 4))
    calls.clear()
    counting_mkldnn.linear_calls = 0
    ffn_residual(ffn, x, identity)  # autograd records: the plain FFN, once
    assert (counting_mkldnn.linear_calls, len(calls)) == (0, 1)


@pytest.mark.parametrize('act', ['none', 'relu', 'gelu', 'sigmoid'])
def test_linear_act_equals_the_plain_layer(act, counting_mkldnn, one_thread):
    from visattn_mm.models.layers import Linear, linear_act
    torch.manual_seed(0)
    layer = Linear(24, 40).eval()
    plain_act = dict(none=lambda y: y, relu=torch.relu, gelu=nn.functional.gelu,
                     sigmoid=torch.sigmoid)[act]
    for x in (torch.randn(3, 24), torch.randn(2, 5, 7, 24),
              torch.randn(2, 24, 7).transpose(1, 2)):  # 2-D, 4-D, not contiguous
        expected = plain_act(nn.functional.linear(x, layer.weight, layer.bias))
        with torch.no_grad():
            out = linear_act(layer, x, act)
        assert out.shape == expected.shape and rel(out, expected) < 1e-6
    assert counting_mkldnn.linear_calls == 3
    x = torch.randn(3, 24, requires_grad=True)  # autograd: the plain ops, gradients flow
    linear_act(layer, x, act).sum().backward()
    assert counting_mkldnn.linear_calls == 3 and layer.weight.grad is not None


def test_linear_repacks_a_changed_weight(counting_mkldnn, one_thread):
    """The packed copy follows in-place updates, reassigned data and new parameters."""
    from visattn_mm.models.layers import Linear
    torch.manual_seed(0)
    layer, other = Linear(16, 8).eval(), nn.Linear(16, 8)
    x = torch.randn(4, 16)

    def check():
        with torch.no_grad():
            out = layer(x)
        assert rel(out, nn.functional.linear(x, layer.weight, layer.bias)) < 1e-6

    check()
    layer.load_state_dict(other.state_dict())  # copy_ into the same storage
    check()
    with torch.no_grad():
        layer.weight.mul_(2)
    check()
    layer.weight.data = torch.randn(8, 16)
    check()
    layer.weight = nn.Parameter(torch.randn(8, 16))
    check()
    assert counting_mkldnn.linear_calls == 5


def test_linear_keeps_nn_linear_keys_and_copies(one_thread):
    import copy
    import pickle

    from visattn_mm.models.layers import Linear
    layer = Linear(16, 8).eval()
    with torch.no_grad():
        layer(torch.randn(2, 16))  # packs its weight
    assert isinstance(layer, nn.Linear)
    assert list(layer.state_dict()) == list(nn.Linear(16, 8).state_dict())
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        x = torch.randn(2, 16)
        with torch.no_grad():
            assert torch.allclose(clone(x), layer(x))


def test_vit_block_fused_equals_plain(one_thread):
    from visattn_mm.models.backbones.vit import TransformerBlock
    torch.manual_seed(0)
    block = TransformerBlock(32, 2, 64, drop_path_rate=0.2)
    x = torch.randn(2, 9, 32)
    (fused, _), (plain, _) = fused_and_plain(block, x)
    assert rel(fused, plain) < 1e-6


@pytest.mark.parametrize('chunk_bytes', [None, 1])  # 1: one image per channel mixer's chunk
def test_fcvit_fused_equals_plain(chunk_bytes, monkeypatch, one_thread):
    from visattn_mm.models.backbones.fcvit import FCViT
    from visattn_mm.models.layers import fused_inference
    if chunk_bytes:
        monkeypatch.setattr(fused_inference, 'HIDDEN_CHUNK_BYTES', chunk_bytes)
    torch.manual_seed(0)
    model = randomise_bns(FCViT(arch='tiny', out_indices=(0, 1, 2, 3)))
    fused, plain = fused_and_plain(model, torch.randn(2, 3, 64, 48))
    for a, b in zip(fused, plain):
        assert rel(a, b) < 1e-5


def test_flop_counter_sees_the_plain_ops(monkeypatch, one_thread):
    """Counting MACs (a dispatch mode) takes the plain path: the fused oneDNN ops are opaque."""
    from torch.utils.flop_counter import FlopCounterMode

    from visattn_mm.models.layers import fused_inference
    model = PSLT(arch=dict(embed_dims=12, depths=(2, 1, 2, 1), num_heads=(2, 2))).eval()
    x = torch.randn(1, 3, 64, 64)

    def count():
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops()

    counted = count()
    monkeypatch.setattr(fused_inference, 'inference_fusion_enabled', lambda *_: False)
    assert counted == count() > 0


@pytest.mark.parametrize('approximate', ['none', 'tanh'])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
def test_gelu_keeps_the_layout_values_and_gradients(memory_format, approximate):
    from visattn_mm.models.layers import GELU, is_channels_last
    x = torch.randn(2, 6, 5, 4).to(memory_format=memory_format).requires_grad_()
    ref = x.detach().clone().requires_grad_()
    y = GELU(approximate=approximate)(x)
    expected = nn.functional.gelu(ref, approximate=approximate)
    assert is_channels_last(y) == (memory_format == torch.channels_last)
    # (oneDNN's erf and PyTorch's own kernel differ in the last bit)
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)
    grad = torch.randn(2, 6, 5, 4).to(memory_format=memory_format)
    y.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(x.grad, ref.grad, rtol=1e-6, atol=1e-6)
    assert not is_channels_last(torch.randn(2, 6, 1, 1).to(memory_format=torch.channels_last))


def test_in_image_chunks_splits_only_large_hidden_maps_at_inference(monkeypatch, one_thread):
    """Chunks of whole images whose hidden maps fit HIDDEN_CHUNK_BYTES, the same result in the
    input's layout; one call where the batch fits, while autograd records, or in train mode."""
    from visattn_mm.models.layers import fused_inference, in_image_chunks
    conv = nn.Conv2d(4, 8, 3, padding=1).to(memory_format=torch.channels_last).eval()
    x = torch.randn(5, 4, 6, 6).to(memory_format=torch.channels_last)
    seen = []

    def fn(t):
        seen.append(t.shape[0])
        return conv(t)

    per_image = 32 * 6 * 6 * 4  # 32 hidden channels, fp32
    monkeypatch.setattr(fused_inference, 'HIDDEN_CHUNK_BYTES', 2 * per_image)
    with torch.no_grad():
        whole = conv(x)
        out = in_image_chunks(fn, x, 32, conv)
        assert seen == [2, 2, 1]
        # (oneDNN may pick another algorithm per batch size: the same to rounding, not bits)
        torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-6)
        assert out.is_contiguous(memory_format=torch.channels_last)
        seen.clear()
        in_image_chunks(fn, x[:2], 32, conv)
        assert seen == [2]
        assert in_image_chunks(fn, x[:0], 32, conv).shape == (0, 8, 6, 6)  # an empty batch
        seen.clear()
        conv.train()
        in_image_chunks(fn, x, 32, conv)
        assert seen == [5]
    conv.eval()
    seen.clear()
    in_image_chunks(fn, x, 32, conv)  # autograd records
    assert seen == [5]
