"""What mmengine 0.10.7 lacks for training on CPU-only machines.

- :class:`CPUDistributedDataParallel`: mmengine's Runner wraps a distributed model as
  ``MMDistributedDataParallel(..., device_ids=[LOCAL_RANK])``; torch's DDP refuses ``device_ids``
  for a module on the CPU. This wrapper drops them (gloo all-reduces the CPU gradients).
- :class:`CPUAmpOptimWrapper`: mmengine's ``AmpOptimWrapper`` asserts a GPU (or NPU, MLU,
  MUSA). On the CPU, torch autocasts to bfloat16 only; bfloat16 has float32's exponent range, so
  no loss scaling is needed and the gradient scaler is off.

Both register in the package's ``visattn_mm``-scoped children of mmengine's registries
(:mod:`visattn_mm.registry`), so a config names them
``type='visattn_mm.CPUDistributedDataParallel'`` / ``'visattn_mm.CPUAmpOptimWrapper'`` and lists
``'visattn_mm.apis.cpu'`` in ``custom_imports`` (:mod:`visattn_mm.apis.launch` does both).

- :func:`keep_freed_cpu_memory`: glibc's malloc settings that let a CPU training step reuse its
  large activation maps instead of having the kernel map and zero-fill them afresh.
"""
import ctypes
import os
import sys
from typing import Union

import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from visattn_mm.compat import grad_scaler
from visattn_mm.registry import MODEL_WRAPPERS, OPTIM_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for a model on the CPU (process group on gloo).

    Args:
        module (nn.Module): the model, on the CPU.
        device_ids (list, optional): ignored: mmengine's Runner passes ``[LOCAL_RANK]``, which
            DDP accepts for GPU modules only. Defaults to None.
        **kwargs: passed to ``MMDistributedDataParallel`` (``broadcast_buffers``,
            ``find_unused_parameters``, ...).
    """

    def __init__(self, module, device_ids=None, **kwargs) -> None:
        kwargs.pop('output_device', None)
        super().__init__(module=module, device_ids=None, **kwargs)


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(AmpOptimWrapper):
    """Mixed precision on the CPU: forward and loss under ``torch.autocast('cpu', bfloat16)``.

    Same interface and checkpoint layout as mmengine's ``AmpOptimWrapper`` (its ``loss_scaler``
    entry holds a disabled scaler's empty state).

    Args:
        loss_scale (float | str | dict): accepted for configs written for
            ``AmpOptimWrapper`` and ignored: bfloat16 gradients need no scaling.
            Defaults to 'dynamic'.
        dtype (str | torch.dtype): the autocast type; the CPU has bfloat16 only.
            Defaults to 'bfloat16'.
        **kwargs: passed to ``OptimWrapper`` (``optimizer``, ``accumulative_counts``,
            ``clip_grad``).

    Raises:
        ValueError: ``dtype`` is not bfloat16.
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype] = 'bfloat16', **kwargs) -> None:
        kwargs.pop('use_fsdp', None)
        # skip AmpOptimWrapper.__init__: it asserts an accelerator
        OptimWrapper.__init__(self, **kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype != torch.bfloat16:
            raise ValueError(f'CPU autocast computes in bfloat16 only, got dtype={dtype!r}')
        self.cast_dtype = dtype
        self._scale_update_param = None
        self.loss_scaler = grad_scaler('cpu', enabled=False)


# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4


def keep_freed_cpu_memory(top_pad: int = 256 << 20) -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    glibc serves each block above its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and
    unmaps it on ``free``, so every large activation map of a CPU training step is zero-filled
    by the kernel page by page. A PSLT-base step at batch 16 took 630k page faults and 1.5 s of
    kernel time of its 3.3 s; with mmap off and trimming at its maximum the blocks come from the
    heap and are reused: 2.1 s, 9k faults, peak resident memory +9 % (5.0 vs 4.6 GB).

    Process-wide, for later allocations. The tools call it on CPU-only machines; set
    ``VISATTN_KEEP_CPU_MEMORY=0`` to keep glibc's defaults. Elsewhere than glibc it does nothing.

    Args:
        top_pad (int): bytes to add when the heap grows. Defaults to 256 MiB.

    Returns:
        bool: whether glibc took the settings.
    """
    if os.environ.get('VISATTN_KEEP_CPU_MEMORY', '1') == '0' or not sys.platform.startswith(
            'linux'):
        return False
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2 ** 31 - 1), (_M_TOP_PAD, top_pad)))
