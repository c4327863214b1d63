"""Authors' checkpoint layouts -> this package's layout, one pure-function module per family.

Each family module defines::

    def convert(state_dict: dict) -> OrderedDict
        # authors' keys -> keys of the matching model of this package
        # ('backbone.*' for the backbone, 'head.*' for a classifier head, detector keys kept)
    def looks_like(state_dict: dict) -> bool
        # True when the keys are this family's (used to refuse other families' checkpoints)
"""
import importlib
from collections import OrderedDict
from typing import Mapping

import torch

FAMILIES = {
    'pslt': 'visattn_mm.converters.pslt',
    'fcvit': 'visattn_mm.converters.fcvit',
    'bvit': 'visattn_mm.converters.bvit',
    'dense': 'visattn_mm.converters.dense',
}


def _family_module(family: str):
    if family not in FAMILIES:
        raise ValueError(f'unknown family {family!r}; converters exist for {sorted(FAMILIES)}')
    return importlib.import_module(FAMILIES[family])


def unwrap_state_dict(ckpt: Mapping) -> Mapping:
    """The parameter dict of a raw, ``{'model': ...}`` or ``{'state_dict': ...}`` checkpoint."""
    for key in ('state_dict', 'model', 'state_dict_ema', 'model_ema'):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            return ckpt[key]
    return ckpt


def detect_family(state_dict: Mapping) -> list:
    """Names of the families whose converters recognise these keys."""
    return [name for name in FAMILIES if _family_module(name).looks_like(state_dict)]


def convert(family: str, ckpt: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an authors' checkpoint (or its state dict) of ``family``.

    Raises:
        ValueError: the family is unknown, or the checkpoint is not one of that family's.
    """
    module = _family_module(family)
    state_dict = unwrap_state_dict(ckpt)
    if not module.looks_like(state_dict):
        found = detect_family(state_dict)
        what = f'it looks like a {found[0]!r} checkpoint' if found else \
            'none of the known families recognises its keys'
        sample = ', '.join(list(state_dict)[:5])
        raise ValueError(f'this is not an authors\' {family!r} checkpoint: {what} '
                         f'(first keys: {sample}). Converters: {sorted(FAMILIES)}')
    return module.convert(state_dict)


__all__ = ['FAMILIES', 'convert', 'detect_family', 'unwrap_state_dict']
