"""BViT's broad attention against a straightforward reference, inside and outside the model."""
import math

import pytest
import torch
import torch.nn.functional as F

from visattn_mm.models.backbones import BViT
from visattn_mm.models.layers import broad_attention


def reference_broad(qs, ks, vs, out_dims):
    """Per-layer logits summed, one softmax, every layer's values joined, BPool (the released
    AdaptiveAvgPool1d over the (head, layer, d) channel order)."""
    d = qs[0].shape[-1]
    logits = sum(q @ k.transpose(-2, -1) for q, k in zip(qs, ks)) / math.sqrt(d)  # (B,H,N,N)
    attn = logits.softmax(-1)
    out = attn @ torch.cat(vs, dim=-1)  # (B, H, N, L*d)
    B, H, N, _ = out.shape
    out = out.permute(0, 2, 1, 3).reshape(B, N, -1)  # (B, N, H*L*d): head, layer, d
    return torch.nn.AdaptiveAvgPool1d(out_dims)(out)


# pooling windows inside heads (V pooled first), across heads, and uneven (adaptive)
@pytest.mark.parametrize('heads, layers, d, out_dims', [(3, 12, 64, 192), (2, 3, 8, 16),
                                                        (3, 1, 8, 8), (2, 3, 8, 10)])
@pytest.mark.parametrize('fused', [True, False])
def test_broad_attention_equals_reference(heads, layers, d, out_dims, fused):
    torch.manual_seed(0)
    qs, ks, vs = ([torch.randn(2, heads, 11, d) for _ in range(layers)] for _ in range(3))
    ours = broad_attention(qs, ks, vs, d ** -0.5, out_dims, fused=fused)
    torch.testing.assert_close(ours, reference_broad(qs, ks, vs, out_dims), atol=2e-5,
                               rtol=1e-4)


def test_broad_attention_gradients_reach_every_layer():
    torch.manual_seed(0)
    qs, ks, vs = ([torch.randn(1, 2, 5, 8, requires_grad=True) for _ in range(3)]
                  for _ in range(3))
    broad_attention(qs, ks, vs, 8 ** -0.5, 16).square().sum().backward()
    for t in (*qs, *ks, *vs):
        assert t.grad is not None and t.grad.abs().sum() > 0


def test_model_adds_weighted_broad_output_to_last_layer():
    """The model's output = the plain trunk's last output + 0.4 * reference broad attention of
    the layers' q, k, v (captured by hooks), through the final norm."""
    torch.manual_seed(0)
    arch = dict(embed_dims=32, num_layers=3, num_heads=2, head_dims=16, feedforward_channels=64)
    model = BViT(arch, img_size=32, out_type='raw').eval()
    model.init_weights()
    plain = BViT(arch, img_size=32, out_type='raw', broad_weight=0.).eval()
    plain.load_state_dict(model.state_dict())
    captured = []
    for layer in model.layers:
        layer.attn.register_forward_hook(lambda m, args, out: captured.append(out[1]))
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        ours = model(x)[0]
        plain.ln1 = torch.nn.Identity()
        deep = plain(x)[0]
    qs, ks, vs = zip(*captured)
    expected = model.ln1(deep + 0.4 * reference_broad(qs, ks, vs, 32))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_broad_attention_at_detection_size_fits():
    """Global broad attention at 800x1333, batch 1 (~4,200 tokens): one fused attention, no
    N x N map per layer kept."""
    model = BViT('tiny', out_type='featmap', out_indices=(11,)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 800, 1333))[0]
    assert out.shape == (1, 192, 50, 84) and torch.isfinite(out).all()


def test_converter_maps_patch_linear_to_conv():
    """The released patch Linear over (p1, p2, c)-flattened patches equals our conv."""
    from visattn_mm.converters.vit import convert_vit
    torch.manual_seed(0)
    linear = torch.nn.Linear(16 * 16 * 3, 8)
    sd = convert_vit({'to_patch_embedding.1.weight': linear.weight,
                      'to_patch_embedding.1.bias': linear.bias})
    conv = torch.nn.Conv2d(3, 8, 16, 16)
    conv.weight.data = sd['backbone.patch_embed.weight']
    conv.bias.data = sd['backbone.patch_embed.bias']
    x = torch.rand(1, 3, 32, 16)
    patches = x.view(1, 3, 2, 16, 1, 16).permute(0, 2, 4, 3, 5, 1).reshape(1, 2, 768)
    torch.testing.assert_close(conv(x).flatten(2).transpose(1, 2), linear(patches))
    with pytest.raises(ValueError, match='unexpected key'):
        convert_vit({'transformer.layers.0.2.weight': torch.zeros(1)})


def test_scale_uses_one_layers_head_dims():
    """Scale d^-1/2 with d = head_dims, not L * d (the released code)."""
    torch.manual_seed(0)
    q = [torch.randn(1, 1, 4, 8) for _ in range(2)]
    a = broad_attention(q, q, q, 8 ** -0.5, 16)
    b = broad_attention(q, q, q, 16 ** -0.5, 16)
    assert not torch.allclose(a, b)
    assert F.scaled_dot_product_attention is not None


# the sum of logits (few tokens) and the joined form it falls back to (N_q > 2 L d), all rows
# or the first ones, windows inside heads and uneven ones
@pytest.mark.parametrize('tokens, query_rows, out_dims', [(11, None, 16), (11, 1, 16),
                                                          (11, None, 10), (40, None, 16),
                                                          (40, 3, 10)])
def test_broad_attention_sum_equals_the_joined_form(tokens, query_rows, out_dims):
    from visattn_mm.models.accel.cross_layer import BroadAttentionSum
    torch.manual_seed(0)
    layers, d = 2, 8  # 2 L d = 32: 40 query rows keep the joined form
    qs, ks, vs = ([torch.randn(2, 2, tokens, d) for _ in range(layers)] for _ in range(3))
    summed = BroadAttentionSum(layers, query_rows)
    for qkv in zip(qs, ks, vs):
        summed.append(qkv)
    assert bool(summed.kept) == (tokens > 2 * layers * d and query_rows is None)
    rows = tokens if query_rows is None else query_rows
    expected = broad_attention([q[:, :, :rows] for q in qs], ks, vs, d ** -0.5, out_dims)
    torch.testing.assert_close(summed.attend(d ** -0.5, out_dims), expected, atol=1e-6,
                               rtol=1e-5)
    with pytest.raises(ValueError, match='made for 2 layers'):
        summed.append((qs[0], ks[0], vs[0]))
    with pytest.raises(ValueError, match='holds 0 of its 2 layers'):
        BroadAttentionSum(layers).attend(d ** -0.5, out_dims)


@pytest.mark.parametrize('kwargs', [dict(out_type='cls_token', released_stem=True),
                                    dict(out_type='featmap', out_indices=(1, 2))])
def test_inference_sums_the_broad_logits(kwargs, monkeypatch):
    """Without autograd the model gathers the broad inputs layer by layer: the same outputs as
    the joined form (autograd recording), and no layer's q, k, v kept to the end."""
    from visattn_mm.models.accel.cross_layer import BroadAttentionSum
    from visattn_mm.models.layers import BroadInputs
    torch.manual_seed(0)
    arch = dict(embed_dims=32, num_layers=3, num_heads=2, head_dims=16, feedforward_channels=64)
    model = BViT(arch, img_size=64, **kwargs).eval()
    model.init_weights()
    x = torch.rand(2, 3, 64, 64)
    memories = []
    monkeypatch.setattr(BViT, '_merge', lambda self, x, memory, merge=BViT._merge: (
        memories.append(memory), merge(self, x, memory))[1])
    with torch.no_grad():
        summed = model(x)
    joined = model(x)
    assert isinstance(memories[0], BroadAttentionSum) and not memories[0].kept
    assert type(memories[1]) is BroadInputs
    for a, b in zip(summed, joined):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
