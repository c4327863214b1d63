"""The authors' BViT checkpoints (github.com/koala719/BViT) -> :class:`visattn_mm.BViT` keys.

Converted for an mmpretrain ``ImageClassifier`` (``backbone.*``, ``head.fc``) whose backbone is
built with ``released_stem=True`` (the released 7x7 stride-2 conv). The key table is shared with
Dense attention: :mod:`visattn_mm.converters.vit`.
"""
from collections import OrderedDict
from typing import Mapping

import torch

from .vit import convert_vit, strip_wrapper


def looks_like(state_dict: Mapping) -> bool:
    """True for the released BViT keys: a lucidrains ViT without Dense's ``mix_weight``."""
    keys = {strip_wrapper(k) for k in state_dict}
    return ('transformer.layers.0.0.fn.to_qkv.weight' in keys
            and not any(k.endswith('mix_weight') for k in keys))


def convert(state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    if not looks_like(state_dict):
        raise ValueError("not an authors' BViT checkpoint (no transformer.layers.*.to_qkv, or "
                         "it has Dense attention's mix_weight)")
    return convert_vit(state_dict)
