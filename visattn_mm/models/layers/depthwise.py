"""Depthwise convolution with a fast weight gradient on the CPU.

oneDNN's weight gradient of a depthwise conv with a large kernel is many times slower than its
forward conv (docs/speed.md, "Measurements behind the code").

The weight gradient of a depthwise conv is itself a depthwise conv, with the roles swapped::

    dW[c, i, j] = sum_b sum_yx  dY[b, c, y, x] * X_pad[b, c, s*y + i, s*x + j]

i.e. X (viewed as one image of B*C channels) convolved, channel by channel, with its own output
gradient as the kernel (dilated by the stride), then summed over the batch, which oneDNN's
depthwise *forward* kernel runs much faster. The input's gradient stays oneDNN's.

Only for kernels of at least 5x5: for a 3x3 kernel the swapped conv is the slower one.
"""

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ...compat import is_compiling
from .tracing import is_tracing

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


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (``groups == in_channels == out_channels``; same weights and
    keys) whose weight gradient on the CPU is computed as a depthwise conv (see the module doc;
    the same numbers to float rounding). Elsewhere (kernels below 5x5, CUDA, tracing, compiling,
    no gradient, a dilation or a padding mode) it is ``nn.Conv2d``."""

    def __init__(self, channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__(channels, channels, kernel_size, stride=stride, padding=padding,
                         groups=channels, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (torch.is_grad_enabled() and self.weight.requires_grad and x.device.type == 'cpu'
                and x.dim() == 4 and min(self.kernel_size) >= MIN_KERNEL
                and self.padding_mode == 'zeros'
                and not isinstance(self.padding, str) and self.dilation == (1, 1)
                and not is_tracing() and not is_compiling()):
            return _DepthwiseConvFunction.apply(x, self.weight, self.bias, self.stride,
                                                self.padding)
        return super().forward(x)
