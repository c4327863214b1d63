"""Let mmengine Runner checkpoints load under torch's ``weights_only=True`` default.

torch >= 2.6 refuses to unpickle anything but tensors and plain containers unless the type is
allowed. mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, so resuming, ``load_from``
and ``mim test --checkpoint`` fail on the message hub (``HistoryBuffer``) and the numpy values it
holds. Instead of switching the safety off for every file, we allow exactly those types.
"""
import torch

_allowed = False


def runner_checkpoint_globals() -> list:
    """The non-tensor types that an mmengine 0.10.7 Runner checkpoint holds."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    try:  # numpy >= 2 moved the pickled reconstructors to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in
                     (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


def allow_runner_checkpoints() -> None:
    """Register the types once per process (idempotent)."""
    global _allowed
    if _allowed:
        return
    torch.serialization.add_safe_globals(runner_checkpoint_globals())
    _allowed = True
