"""The plain parts with their activation: keys and numbers of the nn modules they extend."""
import pytest
import torch
from torch import nn

from visattn_mm.models.layers import ConvGelu, Linear


@pytest.mark.parametrize('act', [None, 'relu', 'gelu', 'sigmoid'])
def test_linear_is_nn_linear_then_its_activation(act):
    layer = Linear(6, 4, act=act)
    x = torch.randn(3, 6)
    expected = nn.functional.linear(x, layer.weight, layer.bias)
    expected = {None: expected, 'relu': expected.relu(), 'gelu': nn.functional.gelu(expected),
                'sigmoid': expected.sigmoid()}[act]
    torch.testing.assert_close(layer(x), expected)
    assert list(layer.state_dict()) == ['weight', 'bias']


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="unknown activation 'silu'"):
        Linear(6, 4, act='silu')


def test_conv_gelu_is_nn_conv2d_then_gelu():
    conv = ConvGelu(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(conv(x), nn.functional.gelu(nn.functional.conv2d(
        x, conv.weight, conv.bias, padding=1)), rtol=1e-6, atol=1e-6)
    assert isinstance(conv, nn.Conv2d)


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
