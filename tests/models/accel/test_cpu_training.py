"""The seam's CPU training form of large depthwise convs: the weight gradient computed as a
depthwise conv equals nn.Conv2d's."""
import pytest
import torch
from torch import nn

from visattn_mm.models import accel
from visattn_mm.models.accel import cpu_training


def _pair(kernel, stride, padding, bias):
    """(a depthwise conv with the seam's form where it takes one, the same conv plain)."""
    torch.manual_seed(0)
    fast = nn.Conv2d(6, 6, kernel, stride=stride, padding=padding, groups=6, bias=bias)
    plain = nn.Conv2d(6, 6, kernel, stride=stride, padding=padding, groups=6, bias=bias)
    plain.load_state_dict(fast.state_dict())
    accel.select(fast)
    return fast, plain


def _grads(conv, x, g):
    x = x.clone().requires_grad_()
    out = conv(x)
    out.backward(g)
    grads = [x.grad] + [p.grad for p in conv.parameters()]
    conv.zero_grad(set_to_none=True)
    return out, grads


@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('kernel,stride,padding,size', [
    (11, 1, 5, 14), (5, 1, 2, 9), (5, 2, 2, 9), (7, 2, 3, 10), (5, 2, 0, 13),
    ((5, 7), 1, (2, 3), 7), (3, 1, 1, 9)])
@pytest.mark.parametrize('bias', [True, False])
def test_gradients_equal_nn_conv2d(kernel, stride, padding, size, bias, memory_format):
    fast, plain = _pair(kernel, stride, padding, bias)
    x = torch.randn(3, 6, size, size + 1).contiguous(memory_format=memory_format)
    out_plain = plain(x)
    g = torch.randn_like(out_plain)
    ref_out, ref = _grads(plain, x, g)
    out, grads = _grads(fast, x, g)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    assert out.is_contiguous(memory_format=memory_format) == \
        ref_out.is_contiguous(memory_format=memory_format)
    assert len(grads) == len(ref)
    for a, b in zip(grads, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_swapped_form_is_taken_from_5x5(monkeypatch):
    calls = []
    monkeypatch.setattr(cpu_training._DepthwiseConvFunction, 'apply',
                        lambda *args: calls.append(args) or torch.zeros(()))
    x = torch.randn(1, 6, 9, 9)
    small = _pair(3, 1, 1, True)[0]
    small(x)
    assert not calls and accel.form_of(small) is None  # 3x3: oneDNN's own is faster
    large = _pair(5, 1, 2, True)[0]
    large(x)
    assert len(calls) == 1 and accel.form_of(large) == 'DepthwiseWeightGrad'
    with accel.disabled():  # the switch: the conv's own forward
        large(x)
    assert len(calls) == 1


def test_frozen_input_and_autocast():
    fast, plain = _pair(5, 1, 2, True)
    x = torch.randn(2, 6, 8, 8)  # no gradient for the input: only the weight's and bias's
    with torch.autocast('cpu', torch.bfloat16):
        out = fast(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    with torch.autocast('cpu', torch.bfloat16):
        plain(x).float().sum().backward()
    for a, b in zip(fast.parameters(), plain.parameters()):
        assert a.grad.dtype == torch.float32
        torch.testing.assert_close(a.grad, b.grad, rtol=2e-2, atol=2e-2)


def test_not_a_depthwise_path_outside_training():
    fast, plain = _pair(5, 1, 2, True)
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x))
    assert list(fast.state_dict()) == list(plain.state_dict())
