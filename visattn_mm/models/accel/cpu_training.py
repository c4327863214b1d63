"""CPU training forms: kernels whose backward oneDNN runs slowly.

Depthwise convolutions with a large kernel (:class:`DepthwiseWeightGrad`): oneDNN's weight
gradient of such a conv is many times slower than its forward conv (docs/speed.md,
"Measurements behind the code"). The weight gradient of a depthwise conv is itself a depthwise
conv, with the roles swapped::

    dW[c, i, j] = sum_b sum_yx  dY[b, c, y, x] * X_pad[b, c, s*y + i, s*x + j]

i.e. X (viewed as one image of B*C channels) convolved, channel by channel, with its own output
gradient as the kernel (dilated by the stride), then summed over the batch, which oneDNN's
depthwise *forward* kernel runs much faster. The input's gradient stays oneDNN's. Only for
kernels of at least 5x5: for a 3x3 kernel the swapped conv is the slower one.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import records_graph
from . import Form, enabled, picker

MIN_KERNEL = 5  # the smallest kernel side that takes the swapped weight gradient


class _DepthwiseConvFunction(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, stride, padding, groups=C)`` for a depthwise weight
    (C, 1, kh, kw) and no dilation, with the weight gradient computed as a depthwise conv."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias, stride: Tuple[int, int],
                padding: Tuple[int, int]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.stride, ctx.padding = stride, padding
        return F.conv2d(x, weight, bias, stride, padding, 1, x.shape[1])

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight = ctx.saved_tensors
        B, C, H, W = x.shape
        grad_out = grad_out.to(x.dtype)  # (under autocast the conv ran in a lower dtype)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, list(ctx.stride), list(ctx.padding), [1, 1], False,
                [0, 0], C, [True, False, False])[0]
        if ctx.needs_input_grad[1]:
            kh, kw = weight.shape[-2:]
            images = x.contiguous().view(1, B * C, H, W)  # every (image, channel) a channel
            kernels = grad_out.contiguous().view(B * C, 1, *grad_out.shape[-2:])
            # (the output is kh x kw, or a few rows more where the stride leaves input rows
            # that no output reads: those are cropped)
            grad_w = F.conv2d(images, kernels, None, 1, ctx.padding, ctx.stride, B * C)
            grad_w = grad_w.view(B, C, *grad_w.shape[-2:])[..., :kh, :kw].sum(0).unsqueeze(1)
            grad_w = grad_w.to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_out.sum((0, 2, 3)).to(weight.dtype)
        return grad_x, grad_w, grad_b, None, None


class DepthwiseWeightGrad(Form):
    """A depthwise ``nn.Conv2d`` whose weight gradient is computed as a depthwise conv, for calls
    that autograd records outside tracers and the compiler; the conv's own forward otherwise."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.module
        if (enabled() and torch.is_grad_enabled() and conv.weight.requires_grad and x.dim() == 4
                and not records_graph()):
            return _DepthwiseConvFunction.apply(x, conv.weight, conv.bias, conv.stride,
                                                conv.padding)
        return self.plain(x)


def is_large_depthwise(conv: nn.Module) -> bool:
    """A depthwise conv (groups = in = out channels) with a kernel of at least ``MIN_KERNEL``,
    no dilation and zero padding given in numbers."""
    return (type(conv) is nn.Conv2d and conv.groups == conv.in_channels == conv.out_channels
            and min(conv.kernel_size) >= MIN_KERNEL and conv.dilation == (1, 1)
            and conv.padding_mode == 'zeros' and not isinstance(conv.padding, str))


@picker
def _pick_depthwise(module: nn.Module, context: dict) -> Optional[DepthwiseWeightGrad]:
    if is_large_depthwise(module) and module.weight.device.type == 'cpu':
        return DepthwiseWeightGrad(module)
    return None
