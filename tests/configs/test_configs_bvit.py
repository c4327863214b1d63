"""Every config in configs/bvit/ loads and builds its model in the config's default scope.

The BroadSwin and BroadT2T configs need ``visattn_mm.BroadSwinTransformer`` /
``visattn_mm.BroadT2TViT`` to be registered; until those backbones exist their builds fail.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from visattn_mm.visualization.config_model import iter_dicts

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'bvit')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
BASE = osp.join(ROOT, 'configs', '_base_', 'models', 'bvit.py')
# the BViT classifiers without the released 7x7 stem (3 x 3 x 49 + 3 = 444 parameters fewer than
# the authors' models: 5,710,948 and 22,037,284, research/targets.md), 1000-class head
BVIT_PARAMS = {'bvit-tiny_4xb256_in1k.py': 5_710_504, 'bvit-small_4xb256_in1k.py': 22_036_840}

pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


def test_the_family_is_complete():
    expected = {
        'bvit-tiny_4xb256_in1k.py', 'bvit-small_4xb256_in1k.py', 'broadswin-tiny_16xb64_in1k.py',
        'broadt2t-vit-t-14_8xb64_in1k.py', 'bvit-small_in1k-pre_8xb64_cifar10.py',
        'bvit-small_in1k-pre_8xb64_cifar100.py', 'mask-rcnn_bvit-small_sfp_1x_coco.py',
        'retinanet_bvit-small_sfp_1x_coco.py', 'mask-rcnn_broadswin-tiny_fpn_1x_coco.py',
        'retinanet_broadswin-tiny_fpn_1x_coco.py',
        'mask-rcnn_broadswin-tiny_fpn_ms-3x_ade20k-instance.py',
        'upernet_bvit-small_sfp_8xb2-160k_ade20k-512x512.py',
        'upernet_broadswin-tiny_8xb2-160k_ade20k-512x512.py',
        'reid_bvit-small_gap_1xb64-24k_market1501.py'}
    assert expected <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_loads_cleanly(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    assert 'visattn_mm' in cfg.custom_imports.imports
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')
    # the base file's `_delete_` must have been used up by a merge, not reach a constructor
    assert not any('_delete_' in d for d in iter_dicts(cfg.model.to_dict())), name
    assert cfg.model.backbone.type.startswith('visattn_mm.')


@pytest.mark.parametrize('name', CONFIGS)
def test_pretrained_paths_come_from_the_base_file(name):
    """One edit in configs/_base_/models/bvit.py moves every config's ImageNet checkpoint."""
    paths = {v for k, v in Config.fromfile(BASE).items() if k.endswith('_in1k')}
    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    init = cfg.model.backbone.get('init_cfg')
    inits = init if isinstance(init, list) else [init]
    for item in inits:
        if item and item.get('type') == 'Pretrained':
            assert item.checkpoint in paths and item.prefix == 'backbone.'


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name, build_model):
    model = build_model(osp.join(CONFIG_DIR, name))
    assert isinstance(model, torch.nn.Module)
    if name in BVIT_PARAMS:
        assert sum(p.numel() for p in model.parameters()) == BVIT_PARAMS[name]


@pytest.mark.parametrize('name', ['mask-rcnn_bvit-small_sfp_1x_coco.py',
                                  'retinanet_bvit-small_sfp_1x_coco.py',
                                  'upernet_bvit-small_sfp_8xb2-160k_ade20k-512x512.py'])
def test_bvit_pyramid_levels(name, build_model):
    """BViT's stride-16 map through the neck gives the levels each head expects."""
    model = build_model(osp.join(CONFIG_DIR, name)).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 128, 192))
    strides = [128 // f.shape[-2] for f in feats]
    expected = {'mask-rcnn': [4, 8, 16, 32, 64], 'retinanet': [8, 16, 32, 64, 128],
                'upernet': [4, 8, 16, 32]}[name.split('_')[0]]
    assert strides == expected
