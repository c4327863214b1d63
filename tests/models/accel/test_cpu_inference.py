"""The seam's CPU inference forms equal the plain modules they stand in for."""
import pytest
import torch
from torch import nn

from visattn_mm.models import accel
from visattn_mm.models.accel import cpu_inference
from visattn_mm.models.backbones.pslt import PSLT, LightMlp, MV2BlockSE
from visattn_mm.models.layers import ConvGeluNorm, Linear


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


def with_forms(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with the seam's forms (a backbone picks its own; a part alone is
    given them here)."""
    model.eval()
    accel.select(model)
    return model


def fused_and_plain(model: nn.Module, x: torch.Tensor):
    with_forms(model)
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
    model = with_forms(randomise_bns(MV2BlockSE(8, 8)))
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


def test_training_and_other_norms_take_the_plain_modules(counting_mkldnn, one_thread):
    unit = with_forms(ConvGeluNorm(4, 6, 1, norm_cfg=dict(type='GN', num_groups=2)))
    x = torch.randn(1, 4, 5, 5)
    assert accel.form_of(unit) is None  # no BatchNorm to fold
    bn_unit = ConvGeluNorm(4, 6, 1)
    accel.select(bn_unit)
    assert accel.form_of(bn_unit) is None  # batch statistics
    assert accel.form_of(with_forms(bn_unit)) == 'FusedConvUnit'
    calls = []
    bn_unit.norm.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        bn_unit(x.double().float())
        assert calls == [1]  # the GELU's BN stays (1x1 but nothing after it to fold into)
        calls.clear()
        assert accel.plain_call(x.double())  # not fp32: the plain modules
        bn_unit(x)
        bn_unit.train()  # switched alone, not through a backbone: the plain modules
        bn_unit(x)
        bn_unit.eval()
    bn_unit(x)  # autograd records
    assert calls == [1, 1, 1]
    calls.clear()
    with torch.no_grad():
        bn_unit(x)
    assert calls == [1]


@pytest.mark.parametrize('chunk_bytes', [None, 1])  # 1: one image per MV2 block's chunk
def test_pslt_fused_equals_plain(chunk_bytes, monkeypatch, one_thread):
    if chunk_bytes:
        monkeypatch.setattr(cpu_inference, 'HIDDEN_CHUNK_BYTES', chunk_bytes)
    torch.manual_seed(0)
    model = randomise_bns(PSLT(arch=dict(embed_dims=12, depths=(2, 1, 2, 1), num_heads=(2, 2)),
                               out_indices=(0, 1, 2, 3)))
    fused, plain = fused_and_plain(model, torch.randn(2, 3, 96, 72))
    for a, b in zip(fused, plain):
        assert a.is_contiguous() and rel(a, b) < 1e-5


def test_chains_fold_only_into_1x1(one_thread):
    # a BN before a padded 3x3 conv must stay (the pad would see its shift)
    mlp = with_forms(randomise_bns(LightMlp(8, 8)))
    pw1, dw, pw2 = (mlp.pw1.forward, mlp.dw.forward, mlp.pw2.forward)
    assert (pw1.before, pw1.defer_norm) == (None, False)
    assert (dw.before, dw.defer_norm) == (None, True)
    assert (pw2.before, pw2.defer_norm) == (mlp.dw, False)
    x = torch.randn(2, 7, 7, 8)
    fused, plain = fused_and_plain(mlp, x)
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

    monkeypatch.setattr(cpu_inference, 'FFN_CHUNK_BYTES', 4 * 40 * 8)  # chunks of 64 rows
    torch.manual_seed(0)
    ffn = with_forms(FFN(24, 40, num_fcs=2, **ffn_cfg))
    x, identity = torch.randn(2, 100, 24), torch.randn(2, 100, 24)
    calls = []
    ffn.layers.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        plain = identity + ffn.gamma2(ffn.layers(x))
        calls.clear()
        chunked = ffn(x, identity=identity)
    assert chunked.shape == plain.shape and rel(chunked, plain) < 1e-6
    # 200 rows in chunks of 64: 4 chunks, two oneDNN matmuls each (or the plain FFN)
    assert (counting_mkldnn.linear_calls, len(calls)) == ((8, 0) if onednn else (0, 1))
    calls.clear()
    counting_mkldnn.linear_calls = 0
    ffn(x, identity=identity)  # autograd records: the plain FFN, once
    assert (counting_mkldnn.linear_calls, len(calls)) == (0, 1)


@pytest.mark.parametrize('act', [None, 'relu', 'gelu', 'sigmoid'])
def test_packed_linear_equals_the_plain_layer(act, counting_mkldnn, one_thread):
    torch.manual_seed(0)
    layer = with_forms(Linear(24, 40, act=act))
    plain_act = {None: lambda y: y, 'relu': torch.relu, 'gelu': nn.functional.gelu,
                 'sigmoid': torch.sigmoid}[act]
    for x in (torch.randn(3, 24), torch.randn(2, 5, 7, 24),
              torch.randn(2, 24, 7).transpose(1, 2)):  # 2-D, 4-D, not contiguous
        expected = plain_act(nn.functional.linear(x, layer.weight, layer.bias))
        with torch.no_grad():
            out = layer(x)
        assert out.shape == expected.shape and rel(out, expected) < 1e-6
    assert counting_mkldnn.linear_calls == 3
    x = torch.randn(3, 24, requires_grad=True)  # autograd: the plain ops, gradients flow
    layer(x).sum().backward()
    assert counting_mkldnn.linear_calls == 3 and layer.weight.grad is not None


def test_linear_repacks_a_changed_weight(counting_mkldnn, one_thread):
    """The packed copy follows in-place updates, reassigned data and new parameters."""
    torch.manual_seed(0)
    layer, other = with_forms(Linear(16, 8)), nn.Linear(16, 8)
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

    layer = with_forms(Linear(16, 8))
    with torch.no_grad():
        layer(torch.randn(2, 16))  # packs its weight
    assert isinstance(layer, nn.Linear)
    assert list(layer.state_dict()) == list(nn.Linear(16, 8).state_dict())
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        x = torch.randn(2, 16)
        assert accel.form_of(clone) == 'PackedLinear' and clone.forward.module is clone
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
    if chunk_bytes:
        monkeypatch.setattr(cpu_inference, 'HIDDEN_CHUNK_BYTES', chunk_bytes)
    torch.manual_seed(0)
    model = randomise_bns(FCViT(arch='tiny', out_indices=(0, 1, 2, 3)))
    fused, plain = fused_and_plain(model, torch.randn(2, 3, 64, 48))
    for a, b in zip(fused, plain):
        assert rel(a, b) < 1e-5


def test_mac_counts_see_the_plain_ops(one_thread):
    """Counting MACs switches the forms off from outside: the fused oneDNN ops are opaque to
    FlopCounterMode, the model's own ops are not."""
    from torch.utils.flop_counter import FlopCounterMode

    from visattn_mm.utils.benchmarking import count_gmacs
    model = PSLT(arch=dict(embed_dims=12, depths=(2, 1, 2, 1), num_heads=(2, 2))).eval()
    x = torch.randn(1, 3, 64, 64)

    def count():
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops()

    with_forms_count = count()
    with accel.disabled():
        plain_count = count()
    assert plain_count > with_forms_count  # the oneDNN ops count nothing
    gmacs = count_gmacs(model, x)
    model.train()  # no inference forms at all
    assert gmacs == pytest.approx(count_gmacs(model, x)) and gmacs >= plain_count / 2e9


class Widen(nn.Module):
    """A block that widens each image to 32 channels and back (an image-chunked block)."""

    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Conv2d(4, 32, 3, padding=1), nn.Conv2d(32, 8, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.shape[0])
        return self.down(self.up(x))


def test_image_chunks_split_only_large_hidden_maps_at_inference(monkeypatch, one_thread):
    """Chunks of whole images whose hidden maps fit HIDDEN_CHUNK_BYTES, the same result in the
    input's layout; one call where the batch fits, while autograd records, or in train mode."""
    monkeypatch.setattr(cpu_inference, 'IMAGE_CHUNKED_BLOCKS', ('Widen',))
    block = with_forms(Widen().to(memory_format=torch.channels_last))
    assert accel.form_of(block) == 'ImageChunks' and block.forward.hidden_channels == 32
    x = torch.randn(5, 4, 6, 6).to(memory_format=torch.channels_last)
    per_image = 32 * 6 * 6 * 4  # 32 hidden channels, fp32
    monkeypatch.setattr(cpu_inference, 'HIDDEN_CHUNK_BYTES', 2 * per_image)
    with torch.no_grad():
        whole = Widen.forward(block, x)
        block.seen.clear()
        out = block(x)
        assert block.seen == [2, 2, 1]
        # (oneDNN may pick another algorithm per batch size: the same to rounding, not bits)
        torch.testing.assert_close(out, whole, rtol=1e-5, atol=1e-6)
        assert out.is_contiguous(memory_format=torch.channels_last)
        block.seen.clear()
        block(x[:2])
        assert block.seen == [2]
        assert block(x[:0]).shape == (0, 8, 6, 6)  # an empty batch
        block.seen.clear()
        block.train()
        block(x)
        assert block.seen == [5]
    block.eval()
    block.seen.clear()
    block(x)  # autograd records
    assert block.seen == [5]


def test_the_switch_and_the_forms_follow_mode_and_device(one_thread):
    """Forms are chosen again on train/eval and moves; VISATTN_ACCEL's switch runs plainly."""
    model = PSLT(arch=dict(embed_dims=12, depths=(2, 1, 2, 1), num_heads=(2, 2)))
    forms = lambda: {accel.form_of(m) for m in model.modules()} - {None}  # noqa: E731
    assert forms() == set()  # training: no inference forms, no large depthwise conv
    model.eval()
    assert forms() == {'FusedConvUnit', 'PackedLinear', 'ImageChunks'}
    model.double()
    assert forms() == set()  # fp64: no oneDNN post-op kernels
    model.float().train()
    assert forms() == set()
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        fast = model(x)
        with accel.disabled():
            assert not accel.enabled()
            plain = model(x)
    assert accel.enabled()
    for a, b in zip(fast, plain):
        assert rel(a, b) < 1e-5
