"""Dense attention (DenseDeiT) against a straightforward reference of the released loop."""
import math

import pytest
import torch

from visattn_mm.models.backbones import DenseDeiT
from visattn_mm.models.layers import dense_value_mix

ARCH = dict(embed_dims=32, num_layers=4, num_heads=2, head_dims=16, feedforward_channels=64)


def test_value_mix_equals_per_layer_attention_sum():
    """A (v_i + sum_j w_j v_j) == A v_i + sum_j w_j (A v_j)."""
    torch.manual_seed(0)
    attn = torch.randn(2, 3, 5, 5).softmax(-1)
    v = torch.randn(2, 3, 5, 4)
    previous = [torch.randn(2, 3, 5, 4) for _ in range(3)]
    w = torch.randn(6)
    expected = attn @ v + sum(w[j] * (attn @ p) for j, p in enumerate(previous))
    torch.testing.assert_close(attn @ dense_value_mix(v, previous, w), expected)
    assert torch.equal(dense_value_mix(v, [], w), v)
    with pytest.raises(ValueError, match='3 earlier values but only 2 weights'):
        dense_value_mix(v, previous, w[:2])


def reference_forward(model, x):
    """The released Transformer loop, written out: zero placeholders for later layers, one
    ``A_i V_j`` product per layer j, weighted by ``mix_weight[j]``."""
    tokens, _ = model._embed(x)
    L = len(model.layers)
    values = [torch.zeros(1)] * L
    for i, layer in enumerate(model.layers):
        attn_mod = layer.attn
        h = layer.ln1(tokens)
        B, N, _ = h.shape
        q, k, v = attn_mod.qkv(h).view(B, N, 3, attn_mod.num_heads, -1).permute(2, 0, 3, 1, 4)
        A = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
        out = A @ v
        for j in range(L):
            if j < i:
                out = out + attn_mod.mix_weight[j] * (A @ values[j])
        values[i] = v
        out = attn_mod.proj(out.transpose(1, 2).reshape(B, N, -1))
        tokens = tokens + out
        tokens = tokens + layer.ffn.layers(layer.ln2(tokens))
    return model.ln1(tokens)[:, 0]


def test_model_equals_reference():
    torch.manual_seed(0)
    model = DenseDeiT(ARCH, img_size=32).eval()
    model.init_weights()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], reference_forward(model, x), atol=1e-5,
                                   rtol=1e-4)


def test_every_parameter_gets_a_gradient_and_earlier_values_are_reached():
    """DDP without find_unused_parameters needs a gradient for every parameter; the unused
    mixing weights (j >= i) get exactly zero."""
    torch.manual_seed(0)
    model = DenseDeiT(ARCH, img_size=32, out_type='featmap').train()
    values = []

    def keep_value(module, args, out) -> None:
        out[1][2].retain_grad()
        values.append(out[1][2])

    for layer in model.layers:
        layer.attn.register_forward_hook(keep_value)
    model(torch.rand(2, 3, 32, 32))[0].square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    for i, layer in enumerate(model.layers):
        grad = layer.attn.mix_weight.grad
        assert torch.all(grad[i:] == 0) and (i == 0 or torch.all(grad[:i] != 0)), (i, grad)
    # the first layer's value is used by every later layer: it gets gradient from them
    assert values[0].grad is not None and values[0].grad.abs().sum() > 0


@pytest.mark.parametrize('arch, heads', [('tiny', 3), ('tiny', 2), ('tiny', 1), ('small', 6),
                                         ('small', 4), ('small', 3)])
def test_head_slimming_variants(arch, heads):
    model = DenseDeiT(arch, num_heads=heads)
    assert all(layer.attn.num_heads == heads and layer.attn.head_dims == 64
               for layer in model.layers)
    assert model.layers[0].attn.qkv.out_features == 3 * 64 * heads


def test_bad_head_count():
    with pytest.raises(ValueError, match='num_heads must be a positive int'):
        DenseDeiT('tiny', num_heads=0)


def _mix_chain(values, weights, bank=None, stop=None):
    """Each layer's mix attended by a fixed map, as a stage would, through the bank or the
    stacking form; the loss uses the layers before ``stop`` only."""
    torch.manual_seed(1)
    attn = torch.randn(*values[0].shape[:-1], values[0].shape[-2]).softmax(-1)
    outs = []
    for i, (v, w) in enumerate(zip(values, weights)):
        mixed = bank.mix(i, v, w) if bank is not None else dense_value_mix(v, values[:i], w)
        outs.append((attn @ mixed).sin())
    return sum(o.square().sum() * (k + 1) for k, o in enumerate(outs[:stop]))


@pytest.mark.parametrize('stop', [None, 2])
def test_value_bank_equals_value_mix(stop):
    """The one-buffer form gives the stacking form's mix and, under autograd, its gradients
    (values and weights), also when the last layers do not reach the loss and on a second
    backward through the same graph."""
    from visattn_mm.models.accel.cross_layer import DenseValueBank
    torch.manual_seed(0)
    values = [torch.randn(2, 3, 5, 4, requires_grad=True) for _ in range(4)]
    weights = [torch.randn(4, requires_grad=True) for _ in range(4)]
    with torch.no_grad():
        bank = DenseValueBank(4)
        for i, (v, w) in enumerate(zip(values, weights)):
            torch.testing.assert_close(bank.mix(i, v, w), dense_value_mix(v, values[:i], w))
    leaves = values + weights
    expected = torch.autograd.grad(_mix_chain(values, weights, stop=stop), leaves,
                                   allow_unused=True)
    loss = _mix_chain(values, weights, DenseValueBank(4), stop=stop)
    for retain in (True, False):
        got = torch.autograd.grad(loss, leaves, retain_graph=retain, allow_unused=True)
        for g, e in zip(got, expected):
            if e is None:  # a layer after the loss: no gradient in either form
                assert g is None
            else:
                torch.testing.assert_close(g, e)
    with pytest.raises(ValueError, match='layer 1 of a stage of 1'):
        bank = DenseValueBank(1)
        bank.mix(0, values[0], weights[0])
        bank.mix(1, values[1], weights[1])
    with pytest.raises(ValueError, match='takes its layers in order: layer 2 after 0'):
        DenseValueBank(3).mix(2, values[0], weights[0])


def test_banked_training_step_equals_stacking():
    """DenseDeiT's training forward and gradients with the bank equal the stacking form's
    (gradient checkpointing takes the stacking form)."""
    from visattn_mm.models.accel.cross_layer import DenseValueBank
    torch.manual_seed(0)
    model = DenseDeiT(ARCH, img_size=32, out_type='featmap', drop_path_rate=0.).train()
    x = torch.rand(2, 3, 32, 48)
    grads = []
    for with_cp in (False, True):
        model.with_cp = with_cp
        assert isinstance(model._new_memory(), DenseValueBank) != with_cp
        model.zero_grad()
        model(x)[0].square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], msg=name)


def test_train_and_eval_paths_agree():
    torch.manual_seed(0)
    model = DenseDeiT(ARCH, img_size=32, out_type='featmap')
    model.init_weights()
    model.eval()
    x = torch.rand(2, 3, 32, 48)
    with_grad = model(x)[0]
    with torch.inference_mode():
        torch.testing.assert_close(model(x)[0], with_grad.detach())
