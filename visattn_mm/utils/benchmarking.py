"""What the benchmark tools share: one timed inference or training step, and the process's peak
resident memory (Linux).

For the memory, ``ru_maxrss`` is not used: a child process starts with its parent's, so a model
measured in a fresh child after its parent has held others would read the parent's peak.
``VmHWM`` belongs to the process's own address space and can be reset
(``/proc/self/clear_refs``, Linux >= 4.0).
"""
import resource
import time
from typing import Callable, Optional

import torch
from torch import nn


def timed_step(model: nn.Module, x: torch.Tensor, train: bool,
               loss: Callable[[object], torch.Tensor]) -> float:
    """Seconds of one inference (eval, ``inference_mode``) or training step (train mode,
    ``loss(model(x)).backward()``, gradients dropped after), synchronised on CUDA."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    sync()
    start = time.perf_counter()
    if train:
        model.train()
        loss(model(x)).backward()
        model.zero_grad(set_to_none=True)
    else:
        model.eval()
        with torch.inference_mode():
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
    not possible: the peak so far, so that ``peak_rss_mib() - reset_peak_rss()`` is the growth
    above it)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return _status_mib('VmRSS') or 0.
    except OSError:
        return peak_rss_mib()


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
