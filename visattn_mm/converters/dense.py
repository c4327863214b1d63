"""The authors' Dense-ViT checkpoints (github.com/koala719/Dense-ViT) -> :class:`visattn_mm.
DenseDeiT` keys, for an mmpretrain ``ImageClassifier`` (``backbone.*``, ``head.fc``).

The mixing weights keep their released layout (one vector of 12 per layer), so they copy as
they are. The key table is shared with BViT: :mod:`visattn_mm.converters.vit`.
"""
from collections import OrderedDict
from typing import Mapping

import torch

from .vit import convert_vit, strip_wrapper


def looks_like(state_dict: Mapping) -> bool:
    """True for the released Dense-ViT keys: a lucidrains ViT with ``mix_weight``."""
    return any(strip_wrapper(k).endswith('.0.fn.mix_weight') for k in state_dict)


def convert(state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    if not looks_like(state_dict):
        raise ValueError("not an authors' Dense checkpoint (no transformer.layers.*.mix_weight)")
    return convert_vit(state_dict)
