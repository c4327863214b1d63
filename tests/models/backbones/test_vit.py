"""The plain-ViT contract shared by BViT and DenseDeiT (visattn_mm/models/backbones/vit.py):
arch tables and sizes, outputs for any input size, freezing, checkpointing, drop path,
Pretrained loading with a resized position table, layer depths, and clear errors."""
import pytest
import torch
from conftest import build_in_scope

from visattn_mm.models.backbones import BViT, DenseDeiT

FAMILIES = [BViT, DenseDeiT]
SMALL = dict(embed_dims=32, num_layers=3, num_heads=2, head_dims=16, feedforward_channels=64)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def classifier_params(backbone: dict, channels: int) -> int:
    return n_params(build_in_scope(dict(type='ImageClassifier', backbone=backbone, head=dict(
        type='LinearClsHead', num_classes=1000, in_channels=channels))))


@pytest.mark.parametrize('backbone, channels, expected', [
    (dict(type='visattn_mm.BViT', arch='tiny', released_stem=True), 192, 5_710_948),
    (dict(type='visattn_mm.BViT', arch='tiny'), 192, 5_710_504),
    (dict(type='visattn_mm.BViT', arch='small'), 384, 22_036_840),
    (dict(type='visattn_mm.BViT', arch='small', released_stem=True), 384, 22_037_284),
    (dict(type='visattn_mm.DenseDeiT', arch='tiny'), 192, 5_120_824),
    (dict(type='visattn_mm.DenseDeiT', arch='small'), 384, 22_036_984),
])
def test_parameter_counts(backbone, channels, expected):
    """research/targets.md, with a 1000-class head, to the unit."""
    assert classifier_params(backbone, channels) == expected


@pytest.mark.parametrize('cls', FAMILIES)
def test_arch_aliases_and_dict(cls):
    assert cls('t').arch_settings == cls('tiny').arch_settings
    model = cls(dict(SMALL))
    assert model.embed_dims == 32 and len(model.layers) == 3


@pytest.mark.parametrize('cls', FAMILIES)
def test_bad_arguments(cls):
    with pytest.raises(ValueError, match=r"unknown \w+ arch 'huge'.*'small'.*'tiny'"):
        cls('huge')
    with pytest.raises(ValueError, match='missing'):
        cls(dict(embed_dims=32))
    with pytest.raises(ValueError, match='num_heads 5 does not divide embed_dims 32'):
        cls(dict(SMALL, num_heads=5, head_dims=None))
    with pytest.raises(ValueError, match='unknown out_type'):
        cls(dict(SMALL), out_type='tokens')
    with pytest.raises(ValueError, match=r'out_indices must be stage indices in -3..2'):
        cls(dict(SMALL), out_indices=(3,))
    model = cls(dict(SMALL))
    with pytest.raises(ValueError, match=r'takes images \(B, 3, H, W\).*\(1, 1, 32, 32\)'):
        model(torch.rand(1, 1, 32, 32))


@pytest.mark.parametrize('cls', FAMILIES)
@pytest.mark.parametrize('size', [(32, 32), (50, 75), (8, 16)])
def test_featmap_any_size(cls, size):
    """Patches are padded to whole ones; the position table is resized to the grid."""
    model = cls(dict(SMALL), img_size=64, out_indices=(0, -1), out_type='featmap').eval()
    outs = model(torch.rand(2, 3, *size))
    grid = (-(-size[0] // 16), -(-size[1] // 16))
    assert [tuple(o.shape) for o in outs] == [(2, 32, *grid)] * 2


@pytest.mark.parametrize('cls', FAMILIES)
def test_out_types(cls):
    x = torch.rand(2, 3, 32, 48)
    shapes = {t: tuple(cls(dict(SMALL), out_type=t).eval()(x)[0].shape)
              for t in cls.OUT_TYPES}
    assert shapes == {'cls_token': (2, 32), 'featmap': (2, 32, 2, 3), 'avg_featmap': (2, 32),
                      'raw': (2, 7, 32)}


def test_released_stem_limits_input():
    model = BViT(dict(SMALL), img_size=64, released_stem=True).eval()
    assert model(torch.rand(1, 3, 64, 64))[0].shape == (1, 32)  # 2x2 patches of a 4x4 table
    with pytest.raises(ValueError, match='released_stem=True slices its position table'):
        model(torch.rand(1, 3, 160, 160))


@pytest.mark.parametrize('released_stem', [False, True])
@pytest.mark.parametrize('cls', FAMILIES)
def test_cls_token_output_equals_the_full_last_layer(cls, released_stem):
    """With out_type 'cls_token' the last layer (and BViT's broad merge) runs for the cls token
    alone: its output and every gradient equal the full computation's cls row ('raw')."""
    torch.manual_seed(0)
    full = cls(dict(SMALL), img_size=64, out_indices=(1, 2), out_type='raw',
               released_stem=released_stem, drop_path_rate=0.)
    full.init_weights()
    cls_only = cls(dict(SMALL), img_size=64, out_indices=(1, 2), out_type='cls_token',
                   released_stem=released_stem)
    cls_only.load_state_dict(full.state_dict())
    x = torch.rand(2, 3, 64, 48)
    grads = []
    for model, pick in ((full, lambda o: o[:, 0]), (cls_only, lambda o: o)):
        model.train()
        outs = [pick(o) for o in model(x)]
        (outs[0].square().mean() + outs[1].sin().sum()).backward()
        grads.append([p.grad for p in model.parameters()])
        with torch.no_grad():
            grads[-1].append(torch.cat([pick(o) for o in model.eval()(x)], dim=1))
    assert all(g is not None for g in grads[1][:-1])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # sums in another order


@pytest.mark.parametrize('cls', FAMILIES)
def test_frozen_stages_and_train(cls):
    model = cls(dict(SMALL), frozen_stages=2)
    model.train()
    assert not model.pos_embed.requires_grad and not model.cls_token.requires_grad
    assert not any(p.requires_grad for p in model.patch_embed.parameters())
    assert not any(p.requires_grad for layer in model.layers[:2] for p in layer.parameters())
    assert all(p.requires_grad for p in model.layers[2].parameters())
    assert not model.layers[1].training and model.layers[2].training
    everything = cls(dict(SMALL), frozen_stages=3)
    assert not any(p.requires_grad for p in everything.parameters())


@pytest.mark.parametrize('cls', FAMILIES)
def test_with_cp_same_output_and_grads(cls):
    torch.manual_seed(0)
    plain = cls(dict(SMALL), out_type='featmap')
    plain.init_weights()
    cp = cls(dict(SMALL), out_type='featmap', with_cp=True)
    cp.load_state_dict(plain.state_dict())
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    grads = []
    for model in (plain, cp):
        model.train()
        out = model(x)[0]
        out.square().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(plain(x)[0], cp(x)[0])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('cls', FAMILIES)
def test_drop_path_schedule(cls):
    model = cls(dict(SMALL), drop_path_rate=0.2)
    rates = [getattr(layer.drop_path, 'drop_prob', 0.) for layer in model.layers]
    assert rates[0] == 0 and rates[-1] == pytest.approx(0.2) and rates == sorted(rates)


@pytest.mark.parametrize('cls', FAMILIES)
def test_pretrained_prefix_and_resized_position_table(cls, tmp_path):
    torch.manual_seed(0)
    source = cls(dict(SMALL), img_size=32)  # 2x2 position grid
    source.init_weights()
    path = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in source.state_dict().items()}}, path)
    target = cls(dict(SMALL), img_size=64, init_cfg=dict(type='Pretrained', checkpoint=path,
                                                         prefix='backbone.'))
    target.init_weights()  # 2x2 table resized to 4x4 by the load pre-hook
    assert target.pos_embed.shape == (1, 17, 32)
    torch.testing.assert_close(target.pos_embed[:, 0], source.pos_embed[:, 0])
    torch.testing.assert_close(target.layers[2].ffn.layers[1].weight,
                               source.layers[2].ffn.layers[1].weight)
    wrong = cls(dict(SMALL, embed_dims=48), init_cfg=dict(type='Pretrained', checkpoint=path,
                                                          prefix='backbone.'))
    with pytest.raises(ValueError, match='does not fit'):
        wrong.init_weights()


def test_layer_decay_config_assigns_distinct_rates():
    """mmpretrain's LearningRateDecayOptimWrapperConstructor reads ``get_layer_depth``."""
    from mmengine.optim import build_optim_wrapper

    model = build_in_scope(dict(type='ImageClassifier', backbone=dict(
        type='visattn_mm.BViT', arch=dict(SMALL)), head=dict(
        type='LinearClsHead', num_classes=10, in_channels=32)))
    wrapper = build_optim_wrapper(model, dict(
        type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
        constructor='mmpretrain.LearningRateDecayOptimWrapperConstructor',
        paramwise_cfg=dict(layer_decay_rate=0.5, custom_keys={
            '.pos_embed': dict(decay_mult=0.0), '.cls_token': dict(decay_mult=0.0)})))
    lrs = sorted({round(g['lr'], 10) for g in wrapper.optimizer.param_groups})
    assert len(lrs) == SMALL['num_layers'] + 2  # embeddings, each layer, the rest
    assert lrs[-1] == pytest.approx(1e-3) and lrs[0] == pytest.approx(1e-3 * 0.5 ** 4)


@pytest.mark.parametrize('cls', FAMILIES)
def test_fused_and_written_out_paths_agree(cls, monkeypatch):
    torch.manual_seed(0)
    fused = cls(dict(SMALL), out_type='featmap')
    fused.init_weights()
    monkeypatch.setenv('VISATTN_FUSED_ATTN', '0')
    written = cls(dict(SMALL), out_type='featmap')
    written.load_state_dict(fused.state_dict())
    assert fused.layers[0].attn.fused_attn and not written.layers[0].attn.fused_attn
    x = torch.rand(1, 3, 48, 32)
    torch.testing.assert_close(fused.eval()(x)[0], written.eval()(x)[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('released_stem', [False, True])
@pytest.mark.parametrize('size', [(64, 64), (50, 37)])
def test_patch_embedding_is_the_conv(released_stem, size):
    """The tokens come from ``patch_embed``'s weights as a Linear over flattened patches: the
    conv's numbers, its gradients, and ``patch_grid`` gives the grid of the output."""
    torch.manual_seed(0)
    model = BViT(SMALL, patch_size=8, released_stem=released_stem, out_type='featmap')
    x = torch.randn(2, 3, *size)
    out = model(x)[0]
    assert out.shape[-2:] == model.patch_grid(size)
    padded = torch.randn(2, 3, 16, 24, requires_grad=True)
    tokens, grid = model._patchify(padded)
    ref = model.patch_embed(padded).flatten(2).transpose(1, 2)
    torch.testing.assert_close(tokens, ref, rtol=1e-5, atol=1e-6)
    assert grid == (2, 3)
    grads = torch.autograd.grad(tokens.square().sum(), [padded, model.patch_embed.weight])
    ref_grads = torch.autograd.grad(ref.square().sum(), [padded, model.patch_embed.weight])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
