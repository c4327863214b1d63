"""Let mmengine Runner checkpoints load under torch's ``weights_only=True`` default.

torch >= 2.6 refuses to unpickle anything but tensors and plain containers unless the type is
allowed. mmengine 0.10.7 calls ``torch.load`` without ``weights_only``, so resuming, ``load_from``
and ``mim test --checkpoint`` fail on the message hub (``HistoryBuffer``) and the numpy values it
holds. Instead of switching the safety off for every file, we allow exactly those types.

``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'min')``. Allowing
the real ``builtins.getattr`` would let a crafted file reach any attribute of any allowed object
(e.g. ``ndarray.tofile``), so the name ``builtins.getattr`` is mapped to a getattr that only
returns HistoryBuffer's registered statistics methods.
"""
import os.path as osp
import pickle
import zipfile

import torch

from ..compat import add_safe_globals, load_weights_only

_allowed = False


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to what a pickled HistoryBuffer needs."""
    from mmengine.logging.history_buffer import HistoryBuffer

    # the built-in statistics (registered lazily, on the first instance) and any custom ones
    methods = {'min', 'max', 'current', 'mean', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in methods:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only the '
        f'HistoryBuffer statistics methods {sorted(methods)} are allowed. '
        'Load files you trust with torch.load(..., weights_only=False).')


def runner_checkpoint_globals() -> list:
    """The non-tensor globals that an mmengine 0.10.7 Runner checkpoint refers to."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    try:  # numpy >= 2 moved the pickled reconstructors to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in
                     (np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_)]
    return [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes,
            (_history_buffer_getattr, 'builtins.getattr')]


def allow_runner_checkpoints() -> None:
    """Register the globals once per process (idempotent); torch < 2.6 needs none."""
    global _allowed
    if _allowed:
        return
    add_safe_globals(runner_checkpoint_globals())
    _allowed = True


def authors_checkpoint_globals() -> list:
    """The non-tensor globals the authors' released files hold: timm training checkpoints
    (FCViT) store the run's ``argparse.Namespace`` and numpy metric values."""
    import argparse

    import numpy as np
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64)]
    return [argparse.Namespace, _reconstruct, scalar, np.ndarray, np.dtype, *dtype_classes]


class CorruptCheckpointError(ValueError):
    """A checkpoint file that cannot be read whole: truncated (an interrupted save, a partial
    copy), corrupt (changed bytes) or not a torch checkpoint at all. The message names the file."""


# a torch zip archive starts with a local file header, the legacy (pre-1.6) format with a pickle
# protocol opcode
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


def check_checkpoint_file(path: str, hint: str = '') -> None:
    """Make sure ``path`` is a complete, intact torch checkpoint before anything loads it.

    torch's own errors for a damaged file are ``PytorchStreamReader failed reading zip
    archive`` tracebacks, and a file with flipped bytes in a tensor may even load, with wrong
    values. This reads the archive's directory (missing when the file is truncated) and checks
    every member against its CRC-32 (reading the file once, as a load would). Files in torch's
    legacy, non-zip format have no checksums; they are left to ``torch.load``.

    Args:
        path (str): a local checkpoint file.
        hint (str): what the caller suggests doing about a bad file, appended to the message.
            Defaults to ''.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CorruptCheckpointError: the file is empty, truncated, corrupt or not a torch file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    hint = f' {hint}' if hint else ''

    def bad(what: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f'checkpoint {path} is {what}; it cannot be loaded.{hint}')

    with open(path, 'rb') as f:
        head = f.read(4)
    if not head:
        raise bad('empty (0 bytes: truncated, e.g. a save that was interrupted)')
    if head.startswith(_PICKLE_PROTO):
        return  # torch's legacy format: nothing to check it against
    if head != _ZIP_MAGIC:
        raise bad('not a torch checkpoint (neither a torch zip archive nor a legacy torch file)')
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if not any(n.endswith('/data.pkl') or n == 'data.pkl' for n in names):
                raise bad('a zip archive without data.pkl, so not a torch checkpoint')
            for info in archive.infolist():
                try:
                    with archive.open(info) as member:
                        while member.read(1 << 24):
                            pass
                except zipfile.BadZipFile as err:
                    # torch.serialization.set_crc32_options(False) writes CRC 0: nothing to check
                    if info.CRC == 0 and 'CRC' in str(err):
                        continue
                    raise bad(f'corrupt: {info.filename} fails its check ({err})') from None
    except zipfile.BadZipFile as err:
        raise bad(f'truncated or corrupt: its zip directory cannot be read ({err}; a save '
                  'that was interrupted leaves such a file)') from None
    except (EOFError, OSError, ValueError) as err:
        if isinstance(err, CorruptCheckpointError):
            raise
        raise bad(f'truncated or corrupt ({type(err).__name__}: {err})') from None


def load_authors_checkpoint(path: str, trust: bool = False):
    """Load an authors' released checkpoint, safely unless the user says they trust it.

    Args:
        path (str): the file.
        trust (bool): unpickle anything (runs whatever code the file names). Only for files
            from a source the user trusts. Defaults to False.

    Raises:
        ValueError: the file is not a readable checkpoint (truncated, corrupt, not a torch
            file: :class:`CorruptCheckpointError`), or it needs types beyond
            :func:`authors_checkpoint_globals` and ``trust`` is False; the message says which
            and what to do.
    """
    try:
        if trust:
            return torch.load(path, map_location='cpu', weights_only=False)
        return load_weights_only(path, authors_checkpoint_globals())
    except pickle.UnpicklingError as err:
        raise ValueError(
            f'{path} holds objects beyond tensors, containers, argparse.Namespace and numpy '
            f'values ({str(err).splitlines()[-1][:200]}), so it was not loaded: unpickling them '
            'can run code. If you trust where it came from, pass --trust-checkpoint') from None
    except (RuntimeError, EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise CorruptCheckpointError(
            f'{path} is not a readable torch checkpoint (truncated or corrupt?): '
            f'{type(err).__name__}: {str(err)[:200]}') from None
