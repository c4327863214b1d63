"""The one seam between the models and the ways they run faster.

The model files and their layers say what is computed, once, in plain PyTorch. What runs faster
than that on some device lives here, as *forms*: a form stands in for one module's ``forward``
and computes the same thing (to float rounding) another way. Which modules get a form is decided
per backbone (:func:`select`) when it is built, switched between train and eval, or moved to
another device or dtype, never on every call:

* CPU inference (eval mode): Linear layers as oneDNN matmuls on weights packed once, with their
  activation as a post-op; conv -> GELU -> BN units as one oneDNN conv, each BN folded into a
  conv once per weight change; mmcv FFNs over chunks of rows; blocks with wide hidden maps over
  chunks of images (:mod:`.cpu_inference`).
* CPU training: the weight gradient of large depthwise kernels computed as a depthwise conv
  (:mod:`.cpu_training`).
* Any device: BViT's broad attention summed layer by layer at inference, and Dense attention's
  values kept in one buffer per pass (:mod:`.cross_layer`).
* The memory format a backbone keeps its maps in (:func:`channels_last_on`).

A form that is in place still takes the plain forward for any call that autograd, a tracer,
``torch.compile`` or autocast records (:func:`plain_call`): those see the model files' own ops.

The switch: ``VISATTN_ACCEL=0`` in the environment, or :func:`set_enabled`, or
``with accel.disabled():`` runs every module plainly (forms in place then take the plain path).
Benchmarks and MAC counters use these from outside; nothing in the model path knows it is
measured.
"""
import contextlib
import os
import weakref
from typing import Callable, Iterator, List, Optional

import torch
from torch import nn

from ...compat import is_autocast_enabled
from ..layers import records_graph

_ENABLED = os.environ.get('VISATTN_ACCEL', '1') != '0'

# form pickers, asked in order for each module (parents before their children) with a dict
# shared by one walk; each returns a form or None. A form is a callable that stands in for the
# module's method named by its ``replaces`` (``forward`` unless it says otherwise). Filled by
# the submodules below.
_PICKERS: List[Callable[[nn.Module, dict], Optional[Callable]]] = []


def enabled() -> bool:
    """Whether forms run at all (``VISATTN_ACCEL``, :func:`set_enabled`, :func:`disabled`)."""
    return _ENABLED


def set_enabled(flag: bool) -> None:
    """Turn every form on or off for the whole process."""
    global _ENABLED
    _ENABLED = bool(flag)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run every module plainly inside the block (e.g. while counting MACs)."""
    before = enabled()
    set_enabled(False)
    try:
        yield
    finally:
        set_enabled(before)


def plain_call(x: torch.Tensor) -> bool:
    """Whether a form must run the plain forward for this call: forms are off, or autograd,
    a tracer, the compiler or autocast records it, or x is not fp32."""
    return (not _ENABLED or torch.is_grad_enabled() or x.dtype != torch.float32
            or records_graph() or is_autocast_enabled(x.device.type))


class FormCache(dict):
    """What forms derive from a module's weights (packed or folded copies), each entry checked
    against the weights' versions before use. Copies and pickles of a model start it empty:
    oneDNN's packed tensors have no storage to copy."""

    def __reduce__(self):
        return type(self), ()


class Form:
    """A form of one module: stands in for its method ``replaces``; :meth:`plain` is the
    module's own. This base runs :meth:`fast` on the calls :func:`plain_call` lets through."""
    replaces = 'forward'

    def __init__(self, module: nn.Module) -> None:
        # weakly: a module that held its form and the form it would be a reference cycle, whose
        # memory only the cyclic garbage collector frees
        self._module = weakref.ref(module)
        # what a form derives from the weights, kept with the module across mode switches
        self.cache = module.__dict__.setdefault('_accel_cache', FormCache())

    @property
    def module(self) -> nn.Module:
        return self._module()

    def __getstate__(self) -> dict:  # (copies and pickles: the copy's module, strongly)
        return dict(self.__dict__, _module=self.module)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _module=weakref.ref(state['_module']))

    def plain(self, *args, **kwargs):
        return getattr(type(self.module), self.replaces)(self.module, *args, **kwargs)

    def __call__(self, x: torch.Tensor, *args, **kwargs):
        # (training: the module was switched on its own, not through its backbone)
        if self.module.training or plain_call(x) or not x.numel():
            return self.plain(x, *args, **kwargs)
        return self.fast(x, *args, **kwargs)

    def fast(self, x: torch.Tensor, *args, **kwargs):
        raise NotImplementedError


def picker(fn: Callable[[nn.Module, dict], Optional[Callable]]) -> Callable:
    """Register a form picker (see ``_PICKERS``)."""
    _PICKERS.append(fn)
    return fn


def on_cpu(module: nn.Module) -> bool:
    """Whether the module's parameters (or, without any, buffers) are fp32 on the CPU."""
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return tensor is not None and tensor.device.type == 'cpu' and tensor.dtype == torch.float32


def channels_last_on(device: torch.device) -> bool:
    """The memory format of a backbone whose ``channels_last`` is None: channels-last on the
    CPU (oneDNN's convs, norms and GELU run fastest there), NCHW elsewhere (CUDA's GroupNorm
    copies a channels-last map)."""
    return torch.device(device).type == 'cpu'


def select(root: nn.Module) -> None:
    """Give every module under ``root`` the form its mode, device and dtype call for now, or
    its plain forward."""
    context: dict = {}  # what pickers tell one another during this walk
    for module in root.modules():
        old = module.__dict__.pop('_accel_form', None)
        if old is not None:
            del module.__dict__[old.replaces]
        for pick in _PICKERS:
            form = pick(module, context)
            if form is not None:
                # an instance attribute, in front of the class's method
                module.__dict__[form.replaces] = form
                module.__dict__['_accel_form'] = form
                break


def form_of(module: nn.Module) -> Optional[str]:
    """The name of the form in place on ``module`` (None: its plain forward)."""
    form = module.__dict__.get('_accel_form')
    return None if form is None else type(form).__name__


from . import cpu_inference, cpu_training, cross_layer  # noqa: E402,F401  (register pickers)

__all__ = ['Form', 'channels_last_on', 'disabled', 'enabled', 'form_of', 'on_cpu', 'picker',
           'plain_call', 'select', 'set_enabled']
