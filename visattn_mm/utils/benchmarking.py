"""What the benchmark tools share: one timed inference or training step, the process's peak
resident memory (Linux), the MACs a step computes and the machine's matmul rate (together: how
fast any code doing those MACs could run).

For the memory, ``ru_maxrss`` is not used: a child process starts with its parent's, so a model
measured in a fresh child after its parent has held others would read the parent's peak.
``VmHWM`` belongs to the process's own address space and can be reset
(``/proc/self/clear_refs``, Linux >= 4.0).
"""
import contextlib
import math
import resource
import time
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..compat import flop_formulas
from ..models import accel


def timed_step(model: nn.Module, x: torch.Tensor, train: bool,
               loss: Callable[[object], torch.Tensor],
               amp: Optional[torch.dtype] = None) -> float:
    """Seconds of one inference (eval, ``inference_mode``) or training step (train mode,
    ``loss(model(x)).backward()``, gradients dropped after), synchronised on CUDA; with ``amp``
    (e.g. ``torch.bfloat16``) the forward and the loss run under ``torch.autocast`` of that
    dtype (the backward outside it, as PyTorch recommends)."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    autocast = (torch.autocast(x.device.type, dtype=amp) if amp is not None
                else contextlib.nullcontext())
    sync()
    start = time.perf_counter()
    if train:
        model.train()
        with autocast:
            value = loss(model(x))
        value.backward()
        model.zero_grad(set_to_none=True)
    else:
        model.eval()
        with torch.inference_mode(), autocast:
            model(x)
    sync()
    return time.perf_counter() - start


def _status_mib(key: str) -> Optional[float]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """The peak resident set of this process (since the last :func:`reset_peak_rss`), MiB."""
    peak = _status_mib('VmHWM')
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> float:
    """Reset the peak resident set to the current one and return that, MiB (where the reset is
    not possible: the peak so far). :func:`peak_rss_growth_mib` of it is the growth above it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        pass
    return peak_rss_mib()


def peak_rss_growth_mib(base: float) -> float:
    """How far the peak resident set rose above ``base`` (from :func:`reset_peak_rss`), MiB.

    Never negative: the kernel's RSS counters are per-CPU approximations (off by some pages
    either way), so a process that grew by nothing can read a few dozen KiB below its base."""
    return max(0., peak_rss_mib() - base)


def describe_device(device: str = 'cpu') -> str:
    """The machine a measurement ran on, in words: CPU model, the instruction set PyTorch's CPU
    kernels use, torch's threads (or the CUDA device's name). Speed ratios between codes depend
    on it (e.g. oneDNN's kernels differ between AVX2 and AVX-512 machines)."""
    if str(device).startswith('cuda'):
        return f'{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}'
    model = 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return (f'{model}, {torch.backends.cpu.get_cpu_capability()}, '
            f'{torch.get_num_threads()} threads, torch {torch.__version__}')


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of one fused attention: q k^T and A v, 2 N M (d + d_v) per batch and head."""
    *batch, n, d = query_shape
    return 2 * math.prod(batch) * n * key_shape[-2] * (d + value_shape[-1])


def _sdpa_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args,
                         out_shape=None, **kwargs) -> int:
    """FLOPs of its backward: q k^T again, dA = dO v^T, dv = A^T dO, dq = dS k, dk = dS^T q,
    2 N M (3 d + 2 d_v) per batch and head (PyTorch's count for the CUDA kernels)."""
    *batch, n, d = query_shape
    return 2 * math.prod(batch) * n * key_shape[-2] * (3 * d + 2 * value_shape[-1])


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation,
                         transposed, output_padding, groups, output_mask, out_shape=None) -> int:
    """FLOPs of a convolution's backward: each of the input's and the weight's gradients takes
    the forward's products. (PyTorch's formula counts the weight gradient of a grouped conv as
    if it were dense, ``groups`` times too many: 64x for a 64-channel depthwise conv.)"""
    spatial = (x_shape if transposed else grad_out_shape)[2:]
    forward = 2 * grad_out_shape[0] * math.prod(spatial) * math.prod(w_shape)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _custom_mapping() -> dict:
    """Formulas FlopCounterMode lacks (the CPU fused attention) or gets wrong (the backward of
    grouped convolutions)."""
    aten = torch.ops.aten
    mapping = {aten.convolution_backward: _conv_backward_flops}
    for name, formula in (('_scaled_dot_product_flash_attention_for_cpu', _sdpa_flops),
                          ('_scaled_dot_product_flash_attention_for_cpu_backward',
                           _sdpa_backward_flops)):
        op = getattr(aten, name, None)
        if op is not None:
            mapping[op] = formula
    return mapping


def count_gmacs(fn: Callable, *inputs, grad: bool = False) -> float:
    """GMACs (FLOPs / 2 / 1e9) of ``fn(*inputs)`` under ``FlopCounterMode``, fused attention
    included (its CPU kernels have no formula in PyTorch: one is supplied). The package's
    accelerated forms are off meanwhile (``accel.disabled``): FlopCounterMode cannot count
    oneDNN's fused ops, it counts the model's own.

    Args:
        fn (callable): what to run; under ``torch.no_grad`` unless ``grad`` (then a backward
            that ``fn`` runs is counted too).
        *inputs: its arguments.
        grad (bool): keep autograd on. Defaults to False.

    Returns:
        float: GMACs.
    """
    with accel.disabled(), torch.set_grad_enabled(grad), FlopCounterMode(
            display=False, custom_mapping=_custom_mapping()) as counter:
        fn(*inputs)
    return counter.get_total_flops() / 2 / 1e9


def matmul_gmacs_per_s(device: str = 'cpu', n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul rate, GMAC/s: the best of ``repeats`` n x n by n x n products.

    A bound for dense work, not a promise: no fp32 GEMM or convolution of a model runs faster
    than the large square product (convolutions and small GEMMs run slower), so a step's MACs
    over this rate is the least time any code computing those MACs can take.
    """
    a, b = (torch.randn(n, n, device=device) for _ in range(2))
    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    torch.mm(a, b)  # warm-up
    best = float('inf')
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return n ** 3 / best / 1e9


def _mac_ops() -> set:
    """The ops that carry a step's MACs: those FlopCounterMode has formulas for (matmuls,
    convolutions and their backward, fused attention), the composite ops that reach a dispatch
    mode undecomposed under ``inference_mode`` (``linear``, ``matmul``, ``conv2d``, ...) and
    oneDNN's fused convolution and Linear ops that this package's accelerated forms call."""
    aten = torch.ops.aten
    ops = set(flop_formulas()) | set(_custom_mapping()) | {
        aten.linear, aten.matmul, aten.conv1d, aten.conv2d, aten.conv3d, aten.einsum,
        aten.scaled_dot_product_attention, aten._convolution}
    for name in ('_linear_pointwise', '_convolution_pointwise'):
        op = getattr(torch.ops.mkldnn, name, None)
        if op is not None:
            ops.add(op)
    return ops


class KernelTimer(TorchDispatchMode):
    """Times the MAC-carrying kernels (see :func:`_mac_ops`) of what runs under it.

    ``seconds``: their time as they ran (each call timed once, in the step's order, caches as
    the step left them); ``warm_seconds``: each call run ``repeats`` times more on the same
    operands, its fastest run (what these kernels take at least, warm in cache); ``calls``.
    It times the kernels the model really calls, the accelerated forms' included.
    """

    def __init__(self, repeats: int = 2) -> None:
        super().__init__()
        self.repeats = repeats
        self.seconds = self.warm_seconds = 0.
        self.calls = 0
        self._ops = _mac_ops()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket not in self._ops and func not in self._ops:
            return func(*args, **kwargs)
        times = []
        for _ in range(1 + self.repeats):  # (MAC ops are functional: rerunning is harmless)
            start = time.perf_counter()
            out = func(*args, **kwargs)
            times.append(time.perf_counter() - start)
        self.seconds += times[0]
        self.warm_seconds += min(times)
        self.calls += 1
        return out


def kernel_seconds(fn: Callable, *inputs, repeats: int = 2) -> KernelTimer:
    """The matmul, convolution and attention kernels of ``fn(*inputs)`` timed (a backward that
    ``fn`` runs too): the :class:`KernelTimer` with their ``seconds``, ``warm_seconds`` and
    ``calls``. CPU only: CUDA kernels run asynchronously."""
    with KernelTimer(repeats) as timer:
        fn(*inputs)
    return timer
