"""The authors' PSLT checkpoints (github.com/lazyGj/PSLT) -> :class:`visattn_mm.PSLT` keys.

Two layouts are released:

* classification (timm ``PSLT_tiny`` / ``PSLT`` / ``PSLT_large``): converted for an mmpretrain
  ``ImageClassifier`` whose backbone has ``final_norm=True``: backbone keys under ``backbone.``
  (``norm`` -> ``backbone.norm3``), ``head`` -> ``head.fc``;
* detection (mmdet 2.x, backbone ``pslt``): the same backbone keys under ``backbone.``; every other
  key (neck, heads) is kept as it is.

Backbone keys (``A -> B``; ``<blk>`` = ``stages.{s+2}.blocks.{b}``)::

    patch_embed.proj.{0,2 | 3,5 | 6,8}
        -> stem.{0 | 1 | 2}.{conv, norm}
    conv_layers.{j}.conv.{0,2 | 3,5 | 6,7}, conv_layers.{j}.se
        -> <MV2 block>.{expand | depthwise | project}.{conv, norm}, <MV2 block>.se
        (the strided MV2 blocks, found by their channel change, are the stages' ``downsample``;
         the others are ``blocks`` of stages 0 and 1)
    layers.{s}.blocks.{b}.blocks.{i}.attn.{qkv, kv, proj, relative_position_bias_table}
        -> <blk>.branches.{i}.attn.w_msa.{qkv, qk, proj, relative_position_bias_table}
    layers.{s}.blocks.{b}.blocks.{i}.mlp.conv.{0,2 | 3,5 | 6,7}
        -> <blk>.branches.{i}.mlp.{pw1 | dw | pw2}.{conv, norm}
    layers.{s}.blocks.{b}.blocks.{i}.norm{1,2}
        -> <blk>.branches.{i}.norm{1,2}
    layers.{s}.blocks.{b}.se.fc{1,2}, layers.{s}.blocks.{b}.pointconv
        -> <blk>.fusion.fc{1,2}, <blk>.fusion.proj
    layers.{s}.downsample
        -> stages.{s+3}.downsample
    norm
        -> norm3

Static buffers (``relative_position_index``, ``attn_mask``) and thop counters (``total_ops``,
``total_params``) are dropped: the model rebuilds them for the actual input size.
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch

from .layout import convert_layout

_SIGNATURE = re.compile(r'^(backbone\.)?layers\.\d+\.blocks\.\d+\.blocks\.[12]\.attn\.kv\.weight$')
_DROPPED = re.compile(r'(^|\.)(relative_position_index|attn_mask|total_ops|total_params)$')
# index inside the released conv Sequentials (conv, GELU, BN, conv, GELU, BN, conv, [GELU,] BN)
_STEM_UNITS = {'0': '0.conv', '2': '0.norm', '3': '1.conv', '5': '1.norm', '6': '2.conv',
               '8': '2.norm'}
_MV2_UNITS = {'0': 'expand.conv', '2': 'expand.norm', '3': 'depthwise.conv',
              '5': 'depthwise.norm', '6': 'project.conv', '7': 'project.norm'}
_MLP_UNITS = {'0': 'pw1.conv', '2': 'pw1.norm', '3': 'dw.conv', '5': 'dw.norm', '6': 'pw2.conv',
              '7': 'pw2.norm'}
_ATTN = {'qkv': 'w_msa.qkv', 'kv': 'w_msa.qk', 'proj': 'w_msa.proj',
         'relative_position_bias_table': 'w_msa.relative_position_bias_table'}


def looks_like(state_dict: Mapping) -> bool:
    """True for the authors' PSLT keys (classification, or a detector's ``backbone.``).

    Args:
        state_dict (Mapping): a checkpoint's state dict.

    Returns:
        bool: whether a ladder-branch key of the authors' layout is among its keys.
    """
    return any(_SIGNATURE.match(key) for key in state_dict)


def _unit(table: Dict[str, str], rest: str, where: str) -> str:
    """``'3.weight'`` -> ``'depthwise.conv.weight'`` through a Sequential index table."""
    index, _, param = rest.partition('.')
    if index not in table:
        raise ValueError(f'unexpected key in {where}: {rest!r}')
    return f'{table[index]}.{param}'


def _mv2_places(state_dict: Mapping, prefix: str) -> Dict[int, str]:
    """Where each ``conv_layers.{j}`` goes: strided blocks (channel change) open a stage."""
    indices = sorted({int(m.group(1)) for key in state_dict
                      for m in [re.match(re.escape(prefix) + r'conv_layers\.(\d+)\.', key)] if m})
    places, stage, in_stage = {}, -1, 0
    for j in indices:
        c_in = state_dict[f'{prefix}conv_layers.{j}.conv.0.weight'].shape[1]
        c_out = state_dict[f'{prefix}conv_layers.{j}.conv.6.weight'].shape[0]
        if c_in != c_out:  # the stride-2 block that starts a stage
            stage, in_stage = stage + 1, 0
            places[j] = f'stages.{stage}.downsample'
        else:
            places[j] = f'stages.{stage}.blocks.{in_stage}'
            in_stage += 1
    return places


def _backbone_key(key: str, mv2_places: Dict[int, str]) -> str:
    """An authors' backbone key (without the ``backbone.`` prefix) -> ours."""
    if key.startswith('patch_embed.proj.'):
        return 'stem.' + _unit(_STEM_UNITS, key[len('patch_embed.proj.'):], 'the stem')
    match = re.match(r'^conv_layers\.(\d+)\.(conv|se)\.(.*)$', key)
    if match:
        place, part, rest = mv2_places[int(match.group(1))], match.group(2), match.group(3)
        if part == 'se':
            return f'{place}.se.{rest}'
        return f'{place}.{_unit(_MV2_UNITS, rest, "an MV2 block")}'
    match = re.match(r'^layers\.(\d+)\.blocks\.(\d+)\.(.*)$', key)
    if match:
        stage, block, rest = int(match.group(1)) + 2, match.group(2), match.group(3)
        prefix = f'stages.{stage}.blocks.{block}'
        branch = re.match(r'^blocks\.(\d+)\.(.*)$', rest)
        if branch:
            return f'{prefix}.branches.{branch.group(1)}.{_branch_key(branch.group(2))}'
        fusion = re.match(r'^(se\.fc[12]|pointconv)\.(weight|bias)$', rest)
        if fusion:
            name = 'proj' if fusion.group(1) == 'pointconv' else fusion.group(1)[len('se.'):]
            return f'{prefix}.fusion.{name}.{fusion.group(2)}'
        raise ValueError(f'unexpected key in a ladder block: {key!r}')
    match = re.match(r'^layers\.(\d+)\.downsample\.((norm|reduction)\..*)$', key)
    if match:
        return f'stages.{int(match.group(1)) + 3}.downsample.{match.group(2)}'
    if key.startswith('norm.'):
        return 'norm3.' + key[len('norm.'):]
    raise ValueError(f'unexpected PSLT backbone key: {key!r}')


def _branch_key(rest: str) -> str:
    """A key inside one of the authors' ``LadderSABlock``s -> ours (``LadderBranch``)."""
    if re.match(r'^norm[12]\.', rest):
        return rest
    if rest.startswith('mlp.conv.'):
        return 'mlp.' + _unit(_MLP_UNITS, rest[len('mlp.conv.'):], 'a branch MLP')
    match = re.match(r'^attn\.(qkv|kv|proj|relative_position_bias_table)(\..*)?$', rest)
    if match:
        return f'attn.{_ATTN[match.group(1)]}{match.group(2) or ""}'
    raise ValueError(f'unexpected key in a ladder branch: {rest!r}')


def convert(state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Convert an authors' PSLT state dict (classification or mmdet-2.x detector; see the module
    doc); static buffers and thop counters dropped.

    Raises:
        ValueError: the keys are not the authors' PSLT layout.
    """
    prefix = 'backbone.' if any(key.startswith('backbone.') for key in state_dict) else ''
    mv2_places = _mv2_places(state_dict, prefix) if looks_like(state_dict) else {}
    return convert_layout(state_dict, 'PSLT', looks_like,
                          lambda key: _backbone_key(key, mv2_places),
                          hint='layers.0.blocks.0.blocks.1.attn.kv.weight', drop=_DROPPED)


__all__ = ['convert', 'looks_like']
