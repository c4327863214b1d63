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
"""
from typing import Union

import torch
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import AmpOptimWrapper, OptimWrapper

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
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
