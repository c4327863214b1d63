"""The one-pass residual DropPath equals mmcv's x + DropPath(s * y), draw for draw."""
import pytest
import torch
from mmcv.cnn.bricks import DropPath as MMCVDropPath

from visattn_mm.models.layers import DropPath


@pytest.mark.parametrize('layer_scale', [None, torch.rand(6, 1, 1) + .5])
@pytest.mark.parametrize('prob', [0., 0.4])
def test_add_equals_mmcv(prob, layer_scale):
    ours, mmcv = DropPath(prob).train(), MMCVDropPath(prob).train()
    x, y = torch.randn(8, 6, 3, 3), torch.randn(8, 6, 3, 3)
    scaled = y if layer_scale is None else layer_scale * y
    for seed in range(3):
        torch.manual_seed(seed)
        out = ours.add(x, y, layer_scale)
        torch.manual_seed(seed)
        torch.testing.assert_close(out, x + mmcv(scaled))
        torch.manual_seed(seed)
        dropped = ours(y)
        torch.manual_seed(seed)
        torch.testing.assert_close(dropped, mmcv(y))
    ours.eval()
    torch.testing.assert_close(ours.add(x, y, layer_scale), x + scaled)


def test_gradients_and_bad_rate():
    layer_scale = torch.full((4, 1, 1), 0.5, requires_grad=True)
    y = torch.randn(2, 4, 3, 3, requires_grad=True)
    DropPath(0.).add(torch.zeros(2, 4, 3, 3), y, layer_scale).sum().backward()
    torch.testing.assert_close(y.grad, torch.full_like(y, 0.5))
    torch.testing.assert_close(layer_scale.grad, y.detach().sum(dim=(0, 2, 3))[:, None, None])
    with pytest.raises(ValueError, match=r'\[0, 1\)'):
        DropPath(1.)
