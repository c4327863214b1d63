"""Pretrained backbone weights that must fit, or a clear error.

mmengine's ``PretrainedInit`` loads with ``strict=False`` and only logs what did not match, so a
checkpoint of another family, another arch or an unconverted authors' file would leave a randomly
initialised backbone behind a warning. Backbones of this package load their ``Pretrained``
``init_cfg`` through :class:`CheckedPretrainedMixin` instead: every tensor the backbone has must be
in the checkpoint with the same shape (except ``optional_pretrained`` ones, e.g. output norms that
a classification checkpoint cannot have), or ``init_weights`` raises ``ValueError`` saying what
does not fit and what to do.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint

from visattn_mm.converters import detect_family, unwrap_state_dict


def _split_init_cfg(init_cfg) -> Tuple[Optional[dict], list]:
    """(the Pretrained entry or None, the other entries)."""
    cfgs = [] if init_cfg is None else [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
    pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
    return (pretrained[-1] if pretrained else None), [c for c in cfgs if c not in pretrained]


def _examples(keys: List[str], n: int = 3) -> str:
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def load_fitting_state_dict(module: torch.nn.Module, cfg: dict,
                            optional: str = r'$^') -> Dict[str, torch.Tensor]:
    """Load ``cfg['checkpoint']`` (keys under ``cfg['prefix']``) and check that it fits.

    Args:
        module: the backbone.
        cfg: a ``dict(type='Pretrained', checkpoint=..., prefix=None, map_location='cpu')``.
        optional: regex of the module's keys the checkpoint may lack.

    Returns:
        The checkpoint's tensors for the module's keys.

    Raises:
        ValueError: no tensor under the prefix, or tensors missing or of other shapes.
    """
    path, prefix = cfg['checkpoint'], cfg.get('prefix') or ''
    name = type(module).__name__
    raw = unwrap_state_dict(_load_checkpoint(path, map_location=cfg.get('map_location', 'cpu')))
    raw = {re.sub(r'^module\.', '', k): v for k, v in raw.items()}
    state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}

    families = detect_family(raw)
    hint = (f"It looks like an unconverted authors' {families[0]!r} checkpoint: convert it with "
            f'`python tools/convert_official.py {families[0]} SRC DST`.' if families else
            'Is it a checkpoint of another family or arch, or is the prefix wrong?')
    if not state:
        prefixes = sorted({k.split('.')[0] + '.' for k in raw})
        raise ValueError(f'{path} has no tensors under the prefix {prefix!r} (its top-level '
                         f'prefixes: {_examples(prefixes, 6)}), so it cannot initialise {name}. '
                         + hint)
    own = module.state_dict()
    missing = [k for k in own if k not in state and not re.match(optional, k)]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs {name} {tuple(v.shape)}'
                  for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or mismatched:
        arch = getattr(module, 'arch_settings', None)
        raise ValueError(
            f'{path} (prefix {prefix!r}) does not fit {name}'
            + (f' {arch}' if arch else '') + ': '
            f'{len(missing)} of its {len(own)} tensors are missing ({_examples(missing)}) and '
            f'{len(mismatched)} have other shapes ({_examples(mismatched, 2)}). ' + hint)
    unused = [k for k in state if k not in own]
    if unused:
        print_log(f'{name}: {len(unused)} checkpoint tensors unused ({_examples(unused)})',
                  logger='current')
    return {k: state[k] for k in own if k in state}


class CheckedPretrainedMixin:
    """``init_weights`` that loads a ``Pretrained`` init_cfg only if the checkpoint fits.

    Put it before ``BaseModule`` in the bases. Other ``init_cfg`` entries run first (as in
    mmengine, Pretrained has the last word); ``optional_pretrained`` is a regex of keys a
    checkpoint may lack.
    """
    optional_pretrained: str = r'$^'

    def init_weights(self) -> None:
        pretrained, others = _split_init_cfg(self.init_cfg)
        if pretrained is None or self._is_init:
            super().init_weights()
            return
        state = load_fitting_state_dict(self, pretrained, self.optional_pretrained)
        self.init_cfg = others or None
        try:
            super().init_weights()  # children and any non-pretrained entries
        finally:
            self.init_cfg = [*others, pretrained] if others else pretrained
        self.load_state_dict(state, strict=False)
        print_log(f'{type(self).__name__}: loaded {len(state)} tensors from '
                  f"{pretrained['checkpoint']}", logger='current')
