"""Broad and dense attention on mmpretrain's Swin (``cross_layer_swin``) and broad T2T-ViT."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.models.backbones import SwinTransformer, T2T_ViT
from mmpretrain.models.utils import ShiftWindowMSA as MMPShiftWindowMSA

from visattn_mm.models.backbones import BroadSwinTransformer, BroadT2TViT, DenseSwinTransformer
from visattn_mm.models.backbones.broad_t2t import layer_forward
from visattn_mm.registry import MODELS

# a small Swin: 8 channels, 4 stages (the first deep enough for three earlier values)
SMALL = dict(embed_dims=8, depths=[4, 2, 2, 2], num_heads=[2, 2, 4, 4])
SMALL_T2T = dict(embed_dims=48, num_layers=3, layer_cfgs=dict(num_heads=2),
                 t2t_cfg=dict(token_dims=8))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


def _pair(cls, seed=0, **kwargs):
    """A plain mmpretrain Swin and ``cls`` with its weights (both in eval mode)."""
    torch.manual_seed(seed)
    plain = SwinTransformer(**kwargs)
    ours = cls(**kwargs)
    missing, unexpected = ours.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.endswith('mix_weight') for k in missing)
    plain.eval()
    ours.eval()
    return plain, ours


# ---------------------------------------------------------------------------- structure
@pytest.mark.parametrize('arch, depths', [('tiny', [2, 2, 6, 2]), ('small', [2, 2, 18, 2])])
def test_parameter_counts_match_mmpretrain(arch, depths):
    plain = count(SwinTransformer(arch))
    assert count(BroadSwinTransformer(arch)) == plain
    # dense: one weight per block of the stage, per block
    assert count(DenseSwinTransformer(arch)) == plain + sum(d * d for d in depths)
    if arch == 'tiny':  # mmpretrain's Swin-T figure, with its 1000-class linear head
        assert plain + 768 * 1000 + 1000 == 28_288_354


def test_t2t_parameter_count_and_keys_match_mmpretrain():
    plain, ours = T2T_ViT(), BroadT2TViT()
    assert count(ours) == count(plain) == 21_080_422  # T2T-ViT-14 backbone
    assert list(ours.state_dict()) == list(plain.state_dict())
    ours.load_state_dict(plain.state_dict(), strict=True)


def test_broad_swin_loads_mmpretrain_state_dict_strictly():
    plain = SwinTransformer('tiny', out_indices=(0, 1, 2, 3))
    ours = BroadSwinTransformer('tiny', out_indices=(0, 1, 2, 3))
    assert list(ours.state_dict()) == list(plain.state_dict())
    ours.load_state_dict(plain.state_dict(), strict=True)
    dense = DenseSwinTransformer('tiny', out_indices=(0, 1, 2, 3))
    missing, unexpected = dense.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and len(missing) == 12
    assert all(k.endswith('.attn.w_msa.mix_weight') for k in missing)


@pytest.mark.parametrize('cls', [BroadSwinTransformer, DenseSwinTransformer])
def test_pretrained_init_cfg_with_prefix(tmp_path, cls):
    torch.manual_seed(0)
    plain = SwinTransformer(SMALL, window_size=4)
    path = tmp_path / 'swin.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in plain.state_dict().items()},
                'meta': {}}, path)
    ours = cls(SMALL, window_size=4, out_indices=(1, 3),
               init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    ours.init_weights()
    mine = ours.state_dict()
    for k, v in plain.state_dict().items():
        if k in mine:
            assert torch.equal(mine[k], v), k
    # a checkpoint of another width does not fit
    other = SwinTransformer(dict(SMALL, embed_dims=16), window_size=4)
    torch.save({f'backbone.{k}': v for k, v in other.state_dict().items()}, path)
    bad = cls(SMALL, window_size=4,
              init_cfg=dict(type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    with pytest.raises(ValueError, match='does not fit'):
        bad.init_weights()


def test_broad_t2t_pretrained_init_cfg_with_prefix(tmp_path):
    torch.manual_seed(0)
    plain = T2T_ViT(**SMALL_T2T)
    path = tmp_path / 't2t.pth'
    torch.save({f'backbone.{k}': v for k, v in plain.state_dict().items()}, path)
    ours = BroadT2TViT(**SMALL_T2T, init_cfg=dict(type='Pretrained', checkpoint=str(path),
                                                  prefix='backbone.'))
    ours.init_weights()
    for k, v in ours.state_dict().items():
        assert torch.equal(v, plain.state_dict()[k]), k


def test_registered():
    for name in ('BroadSwinTransformer', 'DenseSwinTransformer'):
        model = MODELS.build(dict(type=f'visattn_mm.{name}', arch=SMALL, window_size=4))
        assert type(model).__name__ == name
    assert isinstance(MODELS.build(dict(type='visattn_mm.BroadT2TViT', **SMALL_T2T)),
                      BroadT2TViT)


# ---------------------------------------------------------------------------- parity
@pytest.mark.parametrize('pad_small_map', [False, True])
def test_broad_weight_zero_is_mmpretrain_swin(pad_small_map):
    # windows of 4; padded: maps 18x21 (padded, shifted), 9x11, 5x6, 3x3 (padded to one window)
    # not: 32x40, 16x20, 8x10, 4x5 (one window high: not shifted; mmpretrain refuses smaller)
    size = (72, 84) if pad_small_map else (128, 160)
    kwargs = dict(arch=SMALL, window_size=4, out_indices=(0, 1, 2, 3),
                  pad_small_map=pad_small_map, drop_path_rate=0.)
    plain, ours = _pair(BroadSwinTransformer, **kwargs)
    ours.broad_weight = 0.
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        for a, b in zip(plain(x), ours(x)):
            assert a.shape == b.shape
            torch.testing.assert_close(b, a, rtol=0, atol=1e-5)
        ours.broad_weight = 0.4  # and the broad term does change every stage
        assert all(not torch.allclose(a, b, atol=1e-3) for a, b in zip(plain(x), ours(x)))


def test_dense_with_zero_mix_weights_is_mmpretrain_swin():
    kwargs = dict(arch=SMALL, window_size=4, out_indices=(0, 3), drop_path_rate=0.)
    plain, ours = _pair(DenseSwinTransformer, **kwargs)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.endswith('mix_weight'):
                p.zero_()
        x = torch.randn(1, 3, 128, 144)  # maps 32x36 .. 4x5 (mmpretrain needs >= the window)
        for a, b in zip(plain(x), ours(x)):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-5)


def test_broad_t2t_weight_zero_is_mmpretrain_with_its_scale_fixed():
    """mmpretrain 1.2.0 divides T2T logits by the scale; ours multiply (module doc)."""
    from visattn_mm.models.backbones.broad_t2t import fix_attention_scale
    torch.manual_seed(0)
    plain = T2T_ViT(**SMALL_T2T, out_indices=[0, 2], out_type='featmap')
    plain.eval()  # (mmpretrain's T2T_ViT.train returns None: no chaining)
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        unfixed = plain(x)
    fix_attention_scale(plain)
    ours = BroadT2TViT(**SMALL_T2T, out_indices=(0, -1), out_type='featmap', broad_weight=0.)
    ours.load_state_dict(plain.state_dict(), strict=True)
    plain.eval()
    ours.eval()
    with torch.no_grad():
        fixed = plain(x)
        for a, b in zip(fixed, ours(x)):
            torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert not torch.allclose(unfixed[-1], fixed[-1], atol=1e-3)


def test_broad_t2t_layer_scale_multiplies():
    """One encoder layer equals the attention formula written out with the documented scale."""
    import math
    torch.manual_seed(0)
    model = BroadT2TViT(**SMALL_T2T).eval()
    layer, x = model.encoder[0], torch.randn(2, 5, 48)
    out, (q, k, v) = layer_forward(layer, x)
    attn = (q @ k.transpose(-2, -1) / math.sqrt(48 // 2)).softmax(-1) @ v
    mixed = layer.attn.proj(attn.transpose(1, 2).reshape(2, 5, 48))
    expected = x + mixed
    expected = layer.ffn(layer.ln2(expected), identity=expected)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('cls', [BroadSwinTransformer, DenseSwinTransformer])
def test_fused_and_written_out_paths_agree(monkeypatch, cls):
    torch.manual_seed(0)
    fused = cls(SMALL, window_size=4, out_indices=(0, 3))
    monkeypatch.setenv('VISATTN_FUSED_ATTN', '0')
    manual = cls(SMALL, window_size=4, out_indices=(0, 3))
    manual.load_state_dict(fused.state_dict())
    assert fused.stages[0].blocks[0].attn.w_msa.fused_attn
    assert not manual.stages[0].blocks[0].attn.w_msa.fused_attn
    fused.eval()
    manual.eval()
    x = torch.randn(1, 3, 60, 44)
    with torch.no_grad():
        for a, b in zip(fused(x), manual(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------- references
def _reference_broad(qs, ks, vs, ws, H, W, heads):
    """Per unshifted window and head: summed per-layer logits, softmax, the layers' values
    joined on the channel axis in (head, layer, d) order, average-pooled back to C."""
    B, Hp, Wp, C = qs[0].shape
    d, L, N = C // heads, len(qs), ws * ws
    out = torch.zeros(B, Hp, Wp, C)
    for r in range(0, Hp, ws):
        for c in range(0, Wp, ws):
            def tokens(t):
                return t[:, r:r + ws, c:c + ws].reshape(B, N, heads, d)

            logits = sum(torch.einsum('bnhd,bmhd->bhnm', tokens(q), tokens(k))
                         for q, k in zip(qs, ks)) * d ** -0.5
            attn = logits.softmax(-1)
            joined = torch.stack([torch.einsum('bhnm,bmhd->bnhd', attn, tokens(v))
                                  for v in vs], dim=3)  # (B, N, h, L, d)
            pooled = F.adaptive_avg_pool1d(joined.reshape(B, N, heads * L * d), C)
            out[:, r:r + ws, c:c + ws] = pooled.view(B, ws, ws, C)
    return out[:, :H, :W].reshape(B, H * W, C)


@pytest.mark.parametrize('hw, ws', [((5, 7), 3), ((4, 4), 4)])
def test_broad_merge_matches_reference(hw, ws):
    torch.manual_seed(0)
    model = BroadSwinTransformer(SMALL, window_size=ws, broad_weight=0.4)
    stage = model.stages[0]  # 4 blocks, 2 heads of 4
    H, W = hw
    Hp, Wp = H + (-H) % ws, W + (-W) % ws
    kept = [tuple(torch.randn(2, Hp, Wp, 8, requires_grad=True) for _ in range(3))
            for _ in range(4)]
    x = torch.randn(2, H * W, 8)
    out = model._merge(stage, x, hw, kept)
    qs, ks, vs = zip(*kept)
    expected = x + 0.4 * _reference_broad(qs, ks, vs, ws, H, W, heads=2)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    # every block's q, k and v reaches the broad output
    out.square().sum().backward()
    for qkv in kept:
        for t in qkv:
            assert t.grad is not None and t.grad[:, :H, :W].abs().sum() > 0


def _relative_bias(w_msa, ws):
    """The relative position bias written out: (heads, N, N)."""
    coords = [(i, j) for i in range(ws) for j in range(ws)]
    index = torch.tensor([[(a[0] - b[0] + ws - 1) * (2 * ws - 1) + (a[1] - b[1] + ws - 1)
                           for b in coords] for a in coords])
    return w_msa.relative_position_bias_table[index].permute(2, 0, 1)


def _reference_dense_block(block, x, hw, previous, weights):
    """One block: its attention map formed explicitly per shifted window, applied to its own
    value and to every earlier value separately (each rolled by this block's shift)."""
    (H, W), (B, L, C) = hw, x.shape
    attn, w_msa = block.attn, block.attn.w_msa
    ws = attn.window_size
    shift = attn.shift_size if min(H, W) > ws else 0
    heads, d = w_msa.num_heads, C // w_msa.num_heads
    Hp, Wp = H + (-H) % ws, W + (-W) % ws
    normed = F.pad(block.norm1(x).view(B, H, W, C), (0, 0, 0, Wp - W, 0, Hp - H))
    q, k, v = F.linear(normed, w_msa.qkv.weight, w_msa.qkv.bias).chunk(3, dim=-1)

    def rolled(t):
        return torch.roll(t, (-shift, -shift), (1, 2))

    mask = MMPShiftWindowMSA.get_attn_mask((Hp, Wp), ws, shift)  # mmpretrain's, or None
    bias = _relative_bias(w_msa, ws)
    values = [rolled(v)] + [w * rolled(p) for w, p in zip(weights, previous)]
    out = torch.zeros(B, Hp, Wp, C)
    window = 0
    for r in range(0, Hp, ws):
        for c in range(0, Wp, ws):
            def tokens(t):
                return t[:, r:r + ws, c:c + ws].reshape(B, ws * ws, heads, d).transpose(1, 2)

            logits = tokens(rolled(q)) @ tokens(rolled(k)).transpose(-2, -1) * d ** -0.5 + bias
            if mask is not None:
                logits = logits + mask[window]
            amap = logits.softmax(-1)  # (B, h, N, N)
            o = sum(amap @ tokens(t) for t in values)  # (B, h, N, d)
            out[:, r:r + ws, c:c + ws] = o.transpose(1, 2).reshape(B, ws, ws, C)
            window += 1
    out = torch.roll(out, (shift, shift), (1, 2))[:, :H, :W].reshape(B, L, C)
    x = x + w_msa.proj(out)
    x = x + block.ffn.layers(block.norm2(x))
    return x, v


@pytest.mark.parametrize('hw', [(10, 13), (4, 6)])
def test_dense_stage_matches_reference(hw):
    torch.manual_seed(0)
    model = DenseSwinTransformer(SMALL, window_size=4, drop_path_rate=0.)
    model.eval()
    stage = model.stages[0]  # blocks 0..3, 1 and 3 shifted (when the map is large enough)
    with torch.no_grad():
        for block in stage.blocks:
            block.attn.w_msa.relative_position_bias_table.normal_()
    x = torch.randn(2, hw[0] * hw[1], 8)
    with torch.no_grad():
        out = model._stage_forward(stage, x, hw)
        ref, previous = x, []
        for i, block in enumerate(stage.blocks):
            weights = block.attn.w_msa.mix_weight[:i]
            ref, v = _reference_dense_block(block, ref, hw, previous, weights)
            previous.append(v)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize('cls', [BroadSwinTransformer, DenseSwinTransformer])
def test_every_parameter_gets_a_gradient(cls):
    torch.manual_seed(0)
    model = cls(SMALL, window_size=4, out_indices=(0, 1, 2, 3))
    model.train()
    outs = model(torch.randn(2, 3, 50, 70))
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing  # DDP without find_unused_parameters
    if cls is DenseSwinTransformer:
        for s, depth in enumerate(SMALL['depths']):
            for i, block in enumerate(model.stages[s].blocks):
                grad = block.attn.w_msa.mix_weight.grad
                assert grad.shape == (depth,)
                assert torch.all(grad[i:] == 0)  # unused entries
                assert torch.all(grad[:i] != 0)  # every earlier value is reached


def test_broad_t2t_every_parameter_gets_a_gradient_and_matches_reference():
    torch.manual_seed(0)
    model = BroadT2TViT(**SMALL_T2T, out_type='raw', final_norm=False, broad_weight=0.4)
    model.train()
    x = torch.randn(2, 3, 32, 48)
    out = model(x)[0]
    out.square().mean().backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None]
    # reference: the q, k, v of mmpretrain's own layers (via their qkv projections)
    model.eval()
    captured = []
    hooks = [layer.attn.qkv.register_forward_hook(lambda m, i, o: captured.append(o))
             for layer in model.encoder]
    with torch.no_grad():
        model.broad_weight = 0.
        deep = model(x)[0]
        model.broad_weight = 0.4
        mixed = model(x)[0]
    for h in hooks:
        h.remove()
    B, N, C = deep.shape
    qkv = [t.view(B, N, 3, 2, 24) for t in captured[:3]]  # 2 heads of 24
    logits = sum(torch.einsum('bnhd,bmhd->bhnm', t[:, :, 0], t[:, :, 1]) for t in qkv)
    attn = (logits * 24 ** -0.5).softmax(-1)
    joined = torch.stack([torch.einsum('bhnm,bmhd->bnhd', attn, t[:, :, 2]) for t in qkv], 3)
    broad = F.adaptive_avg_pool1d(joined.reshape(B, N, 2 * 3 * 24), C)
    torch.testing.assert_close(mixed, deep + 0.4 * broad, rtol=0, atol=1e-5)


@pytest.mark.parametrize('cls', [BroadSwinTransformer, DenseSwinTransformer])
def test_with_cp_same_outputs_and_gradients(cls):
    torch.manual_seed(0)
    plain = cls(SMALL, window_size=4, out_indices=(1, 3), drop_path_rate=0.)
    ckpt = cls(SMALL, window_size=4, out_indices=(1, 3), drop_path_rate=0., with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 40, 56)
    grads = []
    for model in (plain, ckpt):
        model.train()
        model.zero_grad()
        outs = model(x)
        sum(o.sum() for o in outs).backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-5)


def test_broad_t2t_with_cp():
    torch.manual_seed(0)
    model = BroadT2TViT(**SMALL_T2T, with_cp=True)
    model.train()
    model(torch.randn(1, 3, 32, 32))[0].sum().backward()
    assert model.encoder[0].attn.qkv.weight.grad is not None


# ---------------------------------------------------------------------------- shapes
@pytest.mark.parametrize('cls', [BroadSwinTransformer, DenseSwinTransformer])
@pytest.mark.parametrize('pad_small_map', [False, True])
def test_any_input_size_tiny(cls, pad_small_map):
    model = cls('tiny', out_indices=(0, 1, 2, 3), pad_small_map=pad_small_map)
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 100, 130))
    assert [tuple(o.shape) for o in outs] == [(1, 96, 25, 33), (1, 192, 13, 17),
                                              (1, 384, 7, 9), (1, 768, 4, 5)]


@pytest.mark.parametrize('size', [(17, 23), (5, 5), (64, 33)])
def test_odd_and_tiny_inputs(size):
    model = DenseSwinTransformer(SMALL, window_size=4, out_indices=(0, 3),
                                 out_after_downsample=True)
    model.eval()
    with torch.no_grad():
        a, b = model(torch.randn(1, 3, *size))
    assert a.shape[1] == 16 and b.shape[1] == 64


def test_broad_t2t_out_types():
    model = BroadT2TViT(**SMALL_T2T, out_indices=(1, 2), out_type='featmap')
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 48, 80))
    assert [tuple(o.shape) for o in outs] == [(1, 48, 3, 5)] * 2


# ---------------------------------------------------------------------------- freezing
def test_frozen_stages_swin():
    model = BroadSwinTransformer(SMALL, window_size=4, frozen_stages=1, out_indices=(0, 1))
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.norm0]
    for m in frozen:
        assert not m.training
        assert all(not p.requires_grad for p in m.parameters())
    assert model.stages[1].training and model.norm1.training
    assert all(p.requires_grad for p in model.stages[1].parameters())
    assert model.train() is model
    with pytest.raises(ValueError, match='frozen_stages must be in -1..4'):
        BroadSwinTransformer(SMALL, frozen_stages=5)


def test_frozen_stages_t2t():
    model = BroadT2TViT(**SMALL_T2T, frozen_stages=3)
    model.train()
    assert not model.tokens_to_token.training and not model.norm.training
    assert not model.cls_token.requires_grad
    assert not any(p.requires_grad for p in model.parameters())
    assert model.train() is model


# ---------------------------------------------------------------------------- errors
def test_errors():
    with pytest.raises(ValueError,
                       match=r"unknown BroadSwinTransformer arch 'huge'.*'small'.*'tiny'"):
        BroadSwinTransformer('huge')
    with pytest.raises(ValueError, match="missing keys \\['num_heads'\\]"):
        DenseSwinTransformer(dict(embed_dims=8, depths=[2]))
    with pytest.raises(ValueError, match="unknown keys \\['mlp_ratio'\\]"):
        DenseSwinTransformer(dict(SMALL, mlp_ratio=4))
    with pytest.raises(ValueError, match=r'out_indices must be stage indices in -4..3'):
        BroadSwinTransformer(SMALL, out_indices=(4,))
    model = BroadSwinTransformer(SMALL, window_size=4)
    with pytest.raises(ValueError, match=r'takes images \(B, 3, H, W\).*\(1, 4, 32, 32\)'):
        model(torch.randn(1, 4, 32, 32))
    t2t = BroadT2TViT(**SMALL_T2T)
    with pytest.raises(ValueError, match=r'takes images \(B, 3, H, W\)'):
        t2t(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match='unknown out_type'):
        BroadT2TViT(**SMALL_T2T, out_type='tokens')
    with pytest.raises(ValueError, match='out_indices must be'):
        BroadT2TViT(**SMALL_T2T, out_indices=3)
