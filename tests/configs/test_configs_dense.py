"""Every config of configs/dense/ loads and builds its model in the config's default scope;
the DenseDeiT classifiers have the released parameter counts and the slimmed ones their heads.

The DenseSwin configs need ``visattn_mm.DenseSwinTransformer``; without that backbone
registered, their build tests fail with a KeyError that names it.
"""
import glob
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(ROOT, 'configs', 'dense')
CONFIGS = sorted(osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))


def _params_with_heads(arch: str, heads: int) -> int:
    """DenseDeiT classifier parameters (1000 classes) with ``heads`` heads of 64 channels.

    From the released counts: tiny (2 heads) 5,120,824 and small (6 heads) 22,036,984. Each head
    adds, per layer, 3 x 64 rows of the bias-free qkv projection and 64 input columns of the
    output projection: 4 x 64 x C weights, over 12 layers.
    """
    channels, released_heads, released = dict(tiny=(192, 2, 5_120_824),
                                              small=(384, 6, 22_036_984))[arch]
    return released + 12 * 4 * 64 * channels * (heads - released_heads)


# config -> (arch, heads): the ImageNet classifiers, released and slimmed
CLASSIFIERS = {
    'dense-deit-tiny_4xb256_in1k.py': ('tiny', 2),
    'dense-deit-tiny-3h_4xb256_in1k.py': ('tiny', 3),
    'dense-deit-tiny-1h_4xb256_in1k.py': ('tiny', 1),
    'dense-deit-small_4xb256_in1k.py': ('small', 6),
    'dense-deit-small-4h_4xb256_in1k.py': ('small', 4),
    'dense-deit-small-3h_4xb256_in1k.py': ('small', 3),
}


def test_released_counts_in_the_formula():
    assert _params_with_heads('tiny', 2) == 5_120_824
    assert _params_with_heads('small', 6) == 22_036_984
    # DeiT-Ti's 3 heads: the released BViT-5M minus its 7x7 stem conv (444) plus dense
    # attention's 12 x 12 mixing weights (144): research/bvit_dense.md measured 5,710,948
    assert _params_with_heads('tiny', 3) == 5_710_948 - 444 + 144


def test_every_config_is_covered():
    assert set(CLASSIFIERS) <= set(CONFIGS)
    assert len(CONFIGS) >= 15, CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name, build_model):
    from mmengine.config import Config

    path = osp.join(CONFIG_DIR, name)
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['visattn_mm'], allow_failed_imports=False)
    assert cfg.model.backbone.type in ('visattn_mm.DenseDeiT', 'visattn_mm.DenseSwinTransformer')
    model = build_model(path)
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize('name', sorted(CLASSIFIERS))
def test_classifier_params_and_heads(name, build_model):
    arch, heads = CLASSIFIERS[name]
    model = build_model(osp.join(CONFIG_DIR, name))
    assert type(model.backbone).__name__ == 'DenseDeiT'
    assert model.backbone.embed_dims == dict(tiny=192, small=384)[arch]
    assert model.backbone.num_heads == heads
    for layer in model.backbone.layers:
        assert layer.attn.num_heads == heads and layer.attn.head_dims == 64
        assert layer.attn.qkv.out_features == 3 * 64 * heads
    assert model.head.fc.out_features == 1000
    assert sum(p.numel() for p in model.parameters()) == _params_with_heads(arch, heads)


def test_classifier_recipe():
    """The released recipe (research/bvit_dense.md 1.4) in the tiny config."""
    from mmengine.config import Config

    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'dense-deit-tiny_4xb256_in1k.py'))
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == 'AdamW' and opt.optimizer.eps == 1e-6
    total_batch = 4 * cfg.train_dataloader.batch_size
    assert opt.optimizer.lr == pytest.approx(1e-3 * total_batch / 512)
    assert opt.optimizer.weight_decay == 0.05 and opt.clip_grad.max_norm == 1.0
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 5 and warmup.start_factor * opt.optimizer.lr == pytest.approx(1e-6)
    assert cosine.eta_min == 1e-5 and cosine.end == cfg.train_cfg.max_epochs == 300
    assert cfg.model.backbone.drop_path_rate == 0
    assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
    assert [a.type for a in cfg.model.train_cfg.augments] == ['Mixup', 'CutMix']
    assert cfg.model.head.loss.label_smooth_val == 0.1


@pytest.mark.parametrize('name', [n for n in CONFIGS if not n.endswith('_in1k.py')])
def test_finetune_configs_start_from_imagenet(name):
    """Transfer and dense-task configs load ImageNet weights into the backbone only."""
    from mmengine.config import Config

    cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.prefix == 'backbone.'
    assert init.checkpoint.startswith('pretrained/') and init.checkpoint.endswith('_in1k.pth')
