"""The one walk over an authors' checkpoint that every converter shares.

A family supplies how to recognise its keys (``looks_like``) and its backbone key table
(``backbone_key``); this module does the rest, the same way for every family:

* **detector / segmentor layout** (some key under ``backbone.``): ``backbone.*`` keys go through the
  table, every other key (neck, heads: the same modules in mmdet 3.x / mmseg 1.x) is kept;
* **classifier layout**: ``head.*`` -> ``head.fc.*`` (an mmpretrain ``LinearClsHead``), every
  other key -> ``backbone.`` + the table's answer;
* keys matching ``drop`` (static buffers the model rebuilds, profiler counters) are left out.
"""
import re
from collections import OrderedDict
from typing import Callable, Mapping, Optional

import torch


def convert_layout(state_dict: Mapping, family: str, looks_like: Callable[[Mapping], bool],
                   backbone_key: Callable[[str], str], hint: str,
                   drop: Optional[re.Pattern] = None) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an authors' state dict to this package's keys.

    Args:
        state_dict (Mapping): the authors' state dict (without a ``state_dict`` wrapper).
        family (str): the family's name, for the error message.
        looks_like (callable): whether the keys are the family's.
        backbone_key (callable): an authors' backbone key (without ``backbone.``) -> ours;
            raises ``ValueError`` for a key it does not know.
        hint (str): a key of the family's layout, named in the error.
        drop (re.Pattern, optional): keys to leave out. Defaults to None.

    Returns:
        OrderedDict[str, Tensor]: the same tensors under this package's keys.

    Raises:
        ValueError: the keys are not the family's layout, or a backbone key is unknown.
    """
    if not looks_like(state_dict):
        raise ValueError(f"not an authors' {family} checkpoint: no key like {hint!r} "
                         f'(first keys: {", ".join(list(state_dict)[:5])})')
    detector = any(key.startswith('backbone.') for key in state_dict)
    converted: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    for key, value in state_dict.items():
        if drop is not None and drop.search(key):
            continue
        if detector:
            converted[('backbone.' + backbone_key(key[len('backbone.'):])
                       if key.startswith('backbone.') else key)] = value
        elif key.startswith('head.'):
            converted['head.fc.' + key[len('head.'):]] = value
        else:
            converted['backbone.' + backbone_key(key)] = value
    return converted
