"""The authors' FCViT checkpoints (github.com/ma-xu/FCViT) -> :class:`visattn_mm.FCViT` keys.

Two layouts are released:

* classification (timm ``fcvit_*``): ``patch_embed``, ``network.{0..6}`` (stages at even
  positions, downsamples at odd ones), ``norm`` (GroupNorm before pooling) and ``head`` (Linear);
  converted for an mmpretrain ``ImageClassifier`` with ``out_indices=(3,)``: ``backbone.*``
  (``norm`` -> ``backbone.norm3``) and ``head.fc.*``;
* detection / segmentation (``fcvit_b*_feat`` in mmdet 2.x / mmseg 0.x): the same backbone keys
  under ``backbone.`` with one output norm per stage, ``norm0/2/4/6`` -> ``norm0/1/2/3``;
  every other key (neck, heads) is kept as it is.

Inside a block::

    token_mixer.gc{r}.fc1 / fc2             -> token_mixer.rounds.{r-1}.context.fc_compete / fc_out
    token_mixer.gc{r}.rescale_weight / bias -> token_mixer.rounds.{r-1}.context.sim_weight / bias
    token_mixer.dw{r}                       -> token_mixer.rounds.{r-1}.dwconv
    token_mixer.fc{r}.0 / .2                -> token_mixer.rounds.{r-1}.pw_reduce / pw_expand
"""
import re
from collections import OrderedDict
from typing import Mapping

import torch

from .layout import convert_layout

_SIGNATURE = re.compile(r'^(backbone\.)?network\.0\.0\.token_mixer\.gc1\.rescale_weight$')
_NETWORK = re.compile(r'^network\.(\d+)\.(.*)$')
_MIXER = [  # (pattern inside a block, replacement)
    (re.compile(r'^token_mixer\.gc([12])\.fc1\.'), 'context.fc_compete.'),
    (re.compile(r'^token_mixer\.gc([12])\.fc2\.'), 'context.fc_out.'),
    (re.compile(r'^token_mixer\.gc([12])\.rescale_weight$'), 'context.sim_weight'),
    (re.compile(r'^token_mixer\.gc([12])\.rescale_bias$'), 'context.sim_bias'),
    (re.compile(r'^token_mixer\.dw([12])\.'), 'dwconv.'),
    (re.compile(r'^token_mixer\.fc([12])\.0\.'), 'pw_reduce.'),
    (re.compile(r'^token_mixer\.fc([12])\.2\.'), 'pw_expand.'),
]
_BLOCK_KEPT = re.compile(r'^(norm1|norm2|layer_scale_1|layer_scale_2|channel_mixer\.'
                         r'(fc1|dwconv|fc2))(\.|$)')


def looks_like(state_dict: Mapping) -> bool:
    """True for the authors' FCViT keys (classification, or a det/seg model's ``backbone.``).

    Args:
        state_dict (Mapping): a checkpoint's state dict.

    Returns:
        bool: whether the first block's context key of the authors' layout is among its keys.
    """
    return any(_SIGNATURE.match(key) for key in state_dict)


def _block_key(rest: str) -> str:
    """A key inside one of the authors' ``BasicBlock``s -> ours (``FCViTBlock``)."""
    for pattern, new in _MIXER:
        match = pattern.match(rest)
        if match:
            round_index = int(match.group(1)) - 1
            return f'token_mixer.rounds.{round_index}.{new}{rest[match.end():]}'
    if _BLOCK_KEPT.match(rest):
        return rest
    raise ValueError(f'unexpected key in an FCViT block: {rest!r}')


def _backbone_key(key: str) -> str:
    """An authors' backbone key (without any ``backbone.`` prefix) -> ours."""
    if key.startswith('patch_embed.'):
        return 'stem.' + key[len('patch_embed.'):]
    match = _NETWORK.match(key)
    if match:
        position, rest = int(match.group(1)), match.group(2)
        if position % 2:  # odd positions are the downsamples between stages
            return f'downsamples.{position // 2}.{rest}'
        block, _, inner = rest.partition('.')
        return f'stages.{position // 2}.{block}.{_block_key(inner)}'
    match = re.match(r'^norm([0246])\.(.*)$', key)  # det/seg: one norm per network position
    if match:
        return f'norm{int(match.group(1)) // 2}.{match.group(2)}'
    if key.startswith('norm.'):  # classification: the head's GroupNorm is our last output norm
        return 'norm3.' + key[len('norm.'):]
    raise ValueError(f'unexpected FCViT backbone key: {key!r}')


def convert(state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an authors' FCViT state dict (classification or det/seg; see the module doc).

    Raises:
        ValueError: the keys are not the authors' FCViT layout.
    """
    return convert_layout(state_dict, 'FCViT', looks_like, _backbone_key,
                          hint='[backbone.]network.0.0.token_mixer.gc1.rescale_weight')
