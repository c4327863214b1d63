"""The released BViT and Dense-ViT code (github.com/koala719/BViT, koala719/Dense-ViT) share a
lucidrains-style ViT; one key table serves both (the family modules add their signature).

Keys (``A -> B``; a Lightning ``model.`` or DDP ``module.`` prefix is dropped)::

    conv                                   -> backbone.stem             (BViT's 7x7/2 conv)
    to_patch_embedding.1                   -> backbone.patch_embed      (Linear over (p, p, c)
                                                                         patches -> conv weight)
    pos_embedding, cls_token               -> backbone.pos_embed, backbone.cls_token
    transformer.layers.{i}.0.norm          -> backbone.layers.{i}.ln1
    transformer.layers.{i}.0.fn.to_qkv     -> backbone.layers.{i}.attn.qkv
    transformer.layers.{i}.0.fn.to_out.0   -> backbone.layers.{i}.attn.proj
    transformer.layers.{i}.0.fn.mix_weight -> backbone.layers.{i}.attn.mix_weight  (Dense)
    transformer.layers.{i}.1.norm          -> backbone.layers.{i}.ln2
    transformer.layers.{i}.1.fn.net.{0,3}  -> backbone.layers.{i}.ffn.layers.{0.0,1}
    mlp_head.0, mlp_head.1                 -> backbone.ln1, head.fc
"""
import re
from collections import OrderedDict
from typing import Mapping

import torch

_LAYER = re.compile(r'^transformer\.layers\.(\d+)\.(.+)$')
_IN_LAYER = {
    '0.norm': 'ln1', '0.fn.to_qkv': 'attn.qkv', '0.fn.to_out.0': 'attn.proj',
    '1.norm': 'ln2', '1.fn.net.0': 'ffn.layers.0.0', '1.fn.net.3': 'ffn.layers.1',
}
_TOP = {'conv': 'backbone.stem', 'to_patch_embedding.1': 'backbone.patch_embed',
        'mlp_head.0': 'backbone.ln1', 'mlp_head.1': 'head.fc'}
_WHOLE = {'pos_embedding': 'backbone.pos_embed', 'cls_token': 'backbone.cls_token'}


def strip_wrapper(key: str) -> str:
    """Drop a Lightning ``model.`` or DDP ``module.`` prefix."""
    return re.sub(r'^(model\.|module\.)+', '', key)


def _target(key: str) -> str:
    m = _LAYER.match(key)
    if m:
        index, rest = m.groups()
        if rest == '0.fn.mix_weight':
            return f'backbone.layers.{index}.attn.mix_weight'
        module, _, param = rest.rpartition('.')
        if module in _IN_LAYER:
            return f'backbone.layers.{index}.{_IN_LAYER[module]}.{param}'
    elif key in _WHOLE:
        return _WHOLE[key]
    else:
        module, _, param = key.rpartition('.')
        if module in _TOP:
            return f'{_TOP[module]}.{param}'
    raise ValueError(f'unexpected key {key!r} in a released ViT checkpoint')


def convert_vit(state_dict: Mapping) -> 'OrderedDict[str, torch.Tensor]':
    """Released lucidrains-style ViT keys -> an mmpretrain classifier with a
    :class:`CrossLayerViT` backbone."""
    state_dict = {strip_wrapper(k): v for k, v in state_dict.items()}
    # image channels: the released BViT stem conv's input, else RGB
    channels = state_dict['conv.weight'].shape[1] if 'conv.weight' in state_dict else 3
    out = OrderedDict()
    for key, value in state_dict.items():
        new = _target(key)
        if key == 'to_patch_embedding.1.weight':
            # Linear over patches flattened as (p1, p2, c) -> conv weight (C, c, p1, p2)
            p = int(round((value.shape[1] / channels) ** 0.5))
            value = value.view(value.shape[0], p, p, channels).permute(0, 3, 1, 2).contiguous()
        out[new] = value
    return out
