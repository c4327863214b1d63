"""The shared shifted-window attention (``visattn_mm.models.layers.window_attention``)."""
import copy

import pytest
import torch

from visattn_mm.models.layers import (ExternalValueWindowMSA, ShiftMaskCache, ShiftWindowMSA,
                                      WindowMSA, relative_position_index, shift_window_mask,
                                      window_partition, window_reverse)
from visattn_mm.models.layers.window_attention import MASK_FILL


def _region_mask(height: int, width: int, ws: int, shift: int) -> torch.Tensor:
    """The 3x3-region masks as Swin (roll -s) and PSLT's mirrored branch (roll +s) write them."""
    s = abs(shift)
    if shift < 0:
        cuts = (slice(0, -ws), slice(-ws, -s), slice(-s, None))
    else:
        cuts = (slice(0, s), slice(s, ws), slice(ws, None))
    img = torch.zeros(1, height, width, 1)
    label = 0
    for h in cuts:
        for w in cuts:
            img[:, h, w, :] = label
            label += 1
    win = window_partition(img, ws).squeeze(-1)  # (nW, N)
    diff = win[:, None, :] - win[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, MASK_FILL)


def _pair(monkeypatch, cls=WindowMSA, **kwargs):
    """The same window-attention weights with the fused and with the written-out path."""
    torch.manual_seed(0)
    fused = cls(**kwargs)
    monkeypatch.setenv('VISATTN_FUSED_ATTN', '0')
    manual = cls(**kwargs)
    manual.load_state_dict(fused.state_dict())
    assert fused.fused_attn and not manual.fused_attn
    with torch.no_grad():  # a bias table large enough to matter
        for m in (fused, manual):
            m.relative_position_bias_table.copy_(
                torch.linspace(-2, 2, m.relative_position_bias_table.numel()).view_as(
                    m.relative_position_bias_table))
    return fused, manual


def test_partition_reverse_roundtrip():
    x = torch.randn(2, 14, 21, 5)
    windows = window_partition(x, 7)
    assert windows.shape == (2 * 2 * 3, 49, 5)
    # the second window of the first image is rows 0..6, columns 7..13
    assert torch.equal(windows[1].view(7, 7, 5), x[0, :7, 7:14])
    assert torch.equal(window_reverse(windows, 7, 14, 21), x)


@pytest.mark.parametrize('shift', [-3, 3, -1, 2])
@pytest.mark.parametrize('size', [(14, 21), (7, 14), (21, 7)])
def test_shift_mask_matches_region_masks(shift, size):
    ours = shift_window_mask(*size, 7, shift)
    assert torch.equal(ours, _region_mask(*size, 7, shift))


def test_shift_mask_is_cached_per_module_for_the_last_size():
    cache = ShiftMaskCache()
    cpu = torch.device('cpu')
    a = cache(14, 14, 7, -3, cpu)
    assert cache(14, 14, 7, -3, cpu) is a
    b = cache(14, 14, 7, 3, cpu)
    assert b is not a and torch.equal(b, shift_window_mask(14, 14, 7, 3))
    assert cache(14, 21, 7, -3, cpu).shape == (6, 49, 49)
    assert cache(14, 14, 7, -3, cpu) is not a  # one entry: the last size only
    assert copy.deepcopy(cache).key is None  # a copy of a model builds its own


def test_no_module_level_tensor_cache():
    """Masks live with the modules that use them, never in a module-level cache that would
    outlive the model (and mix fake and real tensors, or devices, across models)."""
    import visattn_mm.models.layers.window_attention as wa
    assert not hasattr(wa.shift_window_mask, 'cache_info')
    block = ShiftWindowMSA(8, 2, 7, shift_size=-3)
    block(torch.randn(1, 14, 14, 8))
    assert block.shift_mask.key == (14, 14, 7, -3, torch.device('cpu'))


def test_relative_position_index_small_window_reads_central_entries():
    full = relative_position_index(7)
    assert full.shape == (49, 49) and full.max() == 13 * 13 - 1 and full[0, 0] == 84
    small = relative_position_index(5, table_window=7)
    # token (r, c) of the 5x5 window has the same offsets as token (r, c) of the 7x7 window
    pos7 = torch.tensor([r * 7 + c for r in range(5) for c in range(5)])
    assert torch.equal(small, full[pos7][:, pos7])
    with pytest.raises(ValueError, match='larger than the bias table'):
        relative_position_index(9, table_window=7)


def _reference(x, mod, mask, v=None, window=None):
    """softmax(q k^T * scale + B + M) v written out independently of both paths."""
    Bw, N, C = x.shape
    h = mod.num_heads
    if v is None:
        q, k, v = mod.qkv(x).view(Bw, N, 3, h, C // h).unbind(2)
    else:
        q, k = mod.qk(x).view(Bw, N, 2, h, C // h).unbind(2)
        v = v.view(Bw, N, h, C // h)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (Bw, h, N, hd)
    logits = torch.einsum('bhnd,bhmd->bhnm', q, k) * mod.scale
    logits = logits + mod.relative_position_bias(window or mod.window_size)
    if mask is not None:
        nW = mask.shape[0]
        logits = (logits.view(-1, nW, h, N, N) + mask[None, :, None]).view(Bw, h, N, N)
    out = torch.einsum('bhnm,bhmd->bhnd', logits.softmax(-1), v)
    return mod.proj(out.transpose(1, 2).reshape(Bw, N, C))


@pytest.mark.parametrize('cls', [WindowMSA, ExternalValueWindowMSA])
def test_fused_and_manual_paths_agree_with_mask_and_scale(monkeypatch, cls):
    external_v = cls is ExternalValueWindowMSA
    fused, manual = _pair(monkeypatch, cls, embed_dims=24, num_heads=3, window_size=7,
                          qk_scale=0.9)
    assert fused.scale == 0.9
    mask = shift_window_mask(14, 21, 7, 3)  # 6 windows
    x = torch.randn(2 * 6, 49, 24, requires_grad=True)
    v = torch.randn(2 * 6, 49, 24) if external_v else None
    out_f = fused(x, mask=mask, v=v)
    out_m = manual(x, mask=mask, v=v)
    ref = _reference(x, fused, mask, v)
    torch.testing.assert_close(out_f, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_m, ref, rtol=1e-5, atol=1e-5)
    # the default scale would give something else: the scale really multiplies the logits
    default = cls(24, 3, 7)
    default.load_state_dict(fused.state_dict())
    assert not torch.allclose(default(x, mask=mask, v=v), ref, atol=1e-3)

    # gradients (the bias table included) agree as well
    grads = []
    for m, out in ((fused, out_f), (manual, out_m)):
        m.zero_grad()
        x.grad = None
        out.square().sum().backward()
        grads.append((x.grad.clone(), m.relative_position_bias_table.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_fused_and_manual_paths_agree_without_mask_and_small_window(monkeypatch):
    fused, manual = _pair(monkeypatch, embed_dims=16, num_heads=2, window_size=7)
    x = torch.randn(4, 25, 16)
    ref = _reference(x, fused, None, window=5)
    torch.testing.assert_close(fused(x, window_size=5), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(manual(x, window_size=5), ref, rtol=1e-5, atol=1e-5)


def test_value_arguments_are_checked():
    with pytest.raises(ValueError, match='pass v'):
        ExternalValueWindowMSA(8, 2, 7)(torch.randn(1, 49, 8))
    with pytest.raises(ValueError, match='window_msa=ExternalValueWindowMSA'):
        WindowMSA(8, 2, 7)(torch.randn(1, 49, 8), v=torch.randn(1, 49, 8))
    with pytest.raises(ValueError, match='not divisible'):
        WindowMSA(10, 4, 7)
    with pytest.raises(ValueError, match='smaller than window_size'):
        ShiftWindowMSA(8, 2, 7, shift_size=-7)


@pytest.mark.parametrize('shift', [-3, 3])
def test_shift_window_msa_is_roll_equivariant_inside_the_map(shift):
    """Without padding, shifted attention = roll, masked window attention, roll back."""
    torch.manual_seed(0)
    attn = ShiftWindowMSA(8, 2, 7, shift_size=shift, window_msa=ExternalValueWindowMSA).eval()
    x, v = torch.randn(2, 14, 21, 8), torch.randn(2, 14, 21, 8)
    out = attn(x, v)
    xs, vs = (torch.roll(t, (shift, shift), (1, 2)) for t in (x, v))
    inner = attn.w_msa(window_partition(xs, 7), mask=_region_mask(14, 21, 7, shift),
                       v=window_partition(vs, 7))
    expected = torch.roll(window_reverse(inner, 7, 14, 21), (-shift, -shift), (1, 2))
    torch.testing.assert_close(out, expected)


def test_shift_window_msa_pads_crops_and_shrinks_small_maps():
    torch.manual_seed(0)
    attn = ShiftWindowMSA(8, 2, 7, shift_size=-3).eval()
    assert attn.window_and_shift(10, 16) == (7, -3)
    assert attn.window_and_shift(7, 16) == (7, 0)  # one window high: no shift
    assert attn.window_and_shift(16, 5) == (5, 0)  # shrunk window
    for size in [(10, 16), (5, 9), (7, 7)]:
        x = torch.randn(2, *size, 8)
        assert attn(x).shape == x.shape
    # padding is right/bottom only: the top-left window of a padded map is the unpadded one
    x = torch.randn(1, 10, 10, 8)
    plain = ShiftWindowMSA(8, 2, 7).eval()
    plain.load_state_dict(attn.state_dict())
    top_left = plain.w_msa(window_partition(x[:, :7, :7], 7))
    torch.testing.assert_close(plain(x)[:, :7, :7], window_reverse(top_left, 7, 7, 7))
