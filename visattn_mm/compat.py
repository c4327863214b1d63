"""torch APIs newer than the oldest stack the package supports (torch 2.1, OpenMMLab's
prebuilt-wheel stack), each with its fallback, and the private oneDNN ops probed once.

Everything else in the package calls these instead of the newer API, so that one place knows
which torch gave what; ``tests/test_compat.py`` runs each fallback on the newest torch too.
"""
import codecs
import functools
import pickle
from typing import Iterable, Optional

import torch
from mmengine.utils import digit_version

TORCH_VERSION = digit_version(torch.__version__)
# torch.load's weights_only default turned True in 2.6: only from then on must the types of a
# Runner checkpoint be allowed for mmengine's plain torch.load calls
WEIGHTS_ONLY_DEFAULT = TORCH_VERSION >= digit_version('2.6.0')


def is_compiling() -> bool:
    """Whether dynamo traces this code (``torch.compiler.is_compiling``, torch >= 2.3)."""
    fn = getattr(getattr(torch, 'compiler', None), 'is_compiling', None)
    if fn is None:  # torch 2.1/2.2
        from torch import _dynamo
        fn = _dynamo.is_compiling
    return fn()


def is_autocast_enabled(device_type: str) -> bool:
    """``torch.is_autocast_enabled(device_type)`` (the device argument: torch >= 2.4)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: one query per device type
        if device_type == 'cpu':
            return torch.is_autocast_cpu_enabled()
        if device_type == 'cuda':
            return torch.is_autocast_enabled()
        return False


def grad_scaler(device_type: str, enabled: bool = True):
    """``torch.amp.GradScaler(device_type)`` (torch >= 2.3; before, CUDA's only)."""
    scaler = getattr(getattr(torch, 'amp', None), 'GradScaler', None)
    if scaler is not None:
        return scaler(device_type, enabled=enabled)
    if device_type == 'cuda' or not enabled:
        # a disabled scaler never touches a device: its methods pass the loss and step through
        return torch.cuda.amp.GradScaler(enabled=enabled)
    raise RuntimeError(f'torch {torch.__version__} has no GradScaler for {device_type!r}')


def add_safe_globals(safe: list) -> bool:
    """Allow ``safe`` for ``torch.load(weights_only=True)`` process-wide where torch loads with
    weights_only by default (>= 2.6: mmengine's own loads need it). Older torch loads
    everything by default, so nothing is registered. Returns whether it registered."""
    if not WEIGHTS_ONLY_DEFAULT:
        return False
    torch.serialization.add_safe_globals(safe)
    return True


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals in ``allowed`` (name -> object): torch's own tensor
    rebuilders and the extra types a format needs."""
    allowed: dict = {}

    def find_class(self, module: str, name: str):
        obj = self.allowed.get(f'{module}.{name}')
        if obj is None:
            raise pickle.UnpicklingError(
                f'Weights only load failed: unsupported global {module}.{name}')
        return obj


def _qualname(obj) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


def restricted_pickle_module(extra: Iterable):
    """A ``pickle_module`` for ``torch.load`` that unpickles tensors, containers and the types
    in ``extra`` only: the weights_only load of torch < 2.5, which has no ``safe_globals``."""
    from torch import _weights_only_unpickler
    allowed = dict(_weights_only_unpickler._get_allowed_globals())
    # protocol-2 pickles of bytes (numpy arrays with numpy 1.x) call _codecs.encode
    allowed['_codecs.encode'] = codecs.encode
    allowed.update({_qualname(g): g for g in extra})

    class Unpickler(_RestrictedUnpickler):
        pass

    Unpickler.allowed = allowed

    class Module:  # what torch.load reads off a pickle_module
        __name__ = 'visattn_mm_restricted_pickle'
        load = staticmethod(lambda f, **kw: Unpickler(f, **kw).load())
        UnpicklingError = pickle.UnpicklingError

    Module.Unpickler = Unpickler
    return Module


def load_weights_only(path: str, extra_globals: list, map_location='cpu',
                      force_fallback: bool = False):
    """``torch.load(path, weights_only=True)`` with ``extra_globals`` allowed for this load only.

    torch >= 2.5 takes them through ``torch.serialization.safe_globals`` (leaving the process'
    list as it was); older torch through a restricted unpickler of the same reach.

    Raises:
        pickle.UnpicklingError: the file holds a global beyond tensors, containers and
            ``extra_globals``.
    """
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is not None and not force_fallback:
        allowed = set(torch.serialization.get_safe_globals())
        # only what is not allowed already: leaving the context removes what it added, which
        # would take the numpy types shared with Runner checkpoints away for good
        extra = [g for g in extra_globals if g not in allowed]
        with safe_globals(extra):
            return torch.load(path, map_location=map_location, weights_only=True)
    module = restricted_pickle_module(extra_globals)
    return torch.load(path, map_location=map_location, weights_only=False, pickle_module=module)


@functools.lru_cache(maxsize=None)
def onednn_fusion_ops() -> bool:
    """Whether this torch has the private oneDNN ops of the CPU inference fusions
    (``mkldnn::_linear_pointwise``, ``_reorder_linear_weight``, ``_convolution_pointwise``) and
    they compute what the plain ops do. Probed once per process on tiny inputs: they are not
    public API and may change or vanish in any release, so anything else takes the plain path.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        ops = torch.ops.mkldnn
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(3, 8, generator=gen)
        w, b = torch.randn(4, 8, generator=gen), torch.randn(4, generator=gen)
        with torch.no_grad():
            packed = ops._reorder_linear_weight(w, None)
            y = ops._linear_pointwise(x, packed, b, 'gelu', [], 'none')
            ok = torch.allclose(y, torch.nn.functional.gelu(x @ w.t() + b), atol=1e-4)
            img = torch.randn(1, 2, 5, 5, generator=gen)
            cw = torch.randn(3, 2, 3, 3, generator=gen)
            conv = ops._convolution_pointwise(img, cw, None, [1, 1], [1, 1], [1, 1], 1,
                                              'gelu', [], 'none')
            ok = ok and torch.allclose(
                conv, torch.nn.functional.gelu(torch.nn.functional.conv2d(img, cw, padding=1)),
                atol=1e-4)
        return bool(ok)
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False


def group_norm_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` in a layout torch's CPU GroupNorm can take back through autograd.

    Its backward crashes the process (SIGSEGV, torch 2.13) on a channels-last input that needs
    no gradient while the norm's weight does, e.g. the output of frozen stages; NCHW works, and
    the norm's result is the same either way.
    """
    if (x.device.type == 'cpu' and torch.is_grad_enabled() and not x.requires_grad
            and x.dim() == 4 and not x.is_contiguous()):
        return x.contiguous()
    return x


# torch 2.1's FlopCounterMode counts composite ops that reach it undecomposed under
# inference_mode (aten.linear) as no MACs; the rewrite in 2.2 (flop_registry) decomposes them
FLOPS_UNDER_INFERENCE_MODE = TORCH_VERSION >= digit_version('2.2.0')


def flop_formulas() -> dict:
    """FlopCounterMode's formulas per op (``flop_registry``; ``flop_mapping`` before 2.2)."""
    from torch.utils import flop_counter
    registry = getattr(flop_counter, 'flop_registry', None)
    return flop_counter.flop_mapping if registry is None else registry
