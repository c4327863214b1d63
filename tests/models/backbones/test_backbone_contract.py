"""Arguments a user keeps when porting an mmpretrain / mmseg / mmdet backbone config to this
package (DESIGN.md, "Backbone contract"): ``img_size`` as int or tuple, ``with_cls_token``, arch
dicts without ``head_dims``, strict ``out_indices``, and the Swin forms' ``frozen_stages``."""
import pytest
import torch
from mmpretrain.models.backbones import SwinTransformer, VisionTransformer

from visattn_mm.models.backbones import (PSLT, BroadSwinTransformer, BroadT2TViT, BViT,
                                         DenseDeiT, DenseSwinTransformer, FCViT)
from visattn_mm.models.layers import resize_pos_embed
from visattn_mm.registry import MODELS

pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)

VITS = [BViT, DenseDeiT]
# an mmpretrain-style ViT arch dict: no head_dims
SMALL = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
SWIN = dict(embed_dims=8, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4])
T2T = dict(embed_dims=48, num_layers=2, layer_cfgs=dict(num_heads=2), t2t_cfg=dict(token_dims=8))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def shapes(module: torch.nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def frozen_names(module: torch.nn.Module) -> set:
    """The parameters that do not train, in train mode (mmpretrain's and mmdet's Swin freeze in
    ``train()``, and their ``train()`` returns None)."""
    module.train()
    return {name for name, p in module.named_parameters() if not p.requires_grad}


def save_backbone(module: torch.nn.Module, path) -> dict:
    """A checkpoint of ``module`` under the prefix ``backbone.``, as a Pretrained init_cfg."""
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in module.state_dict().items()}},
               str(path))
    return dict(type='Pretrained', checkpoint=str(path), prefix='backbone.')


# ---------------------------------------------------------------------------- img_size
@pytest.mark.parametrize('cls', VITS)
def test_img_size_tuple_equals_int_for_the_named_archs(cls):
    """mmseg configs give ``img_size=(512, 512)``: the same model as the int form."""
    as_int, as_tuple = cls('tiny', img_size=224), cls('tiny', img_size=(224, 224))
    assert shapes(as_tuple) == shapes(as_int)
    assert n_params(as_tuple) == n_params(as_int)
    assert as_tuple.pos_grid == as_int.pos_grid == (14, 14)
    built = MODELS.build(dict(type='visattn_mm.' + cls.__name__, arch=dict(SMALL),
                              img_size=[64, 64], out_type='featmap'))  # (a dumped config's list)
    assert built.img_size == (64, 64) and built.pos_embed.shape == (1, 17, 32)


@pytest.mark.parametrize('cls', VITS)
def test_non_square_img_size_makes_an_h_by_w_table(cls):
    torch.manual_seed(0)
    model = cls(dict(SMALL), img_size=(32, 64), out_type='featmap', out_indices=(0, -1)).eval()
    assert model.pos_grid == (2, 4) and model.pos_embed.shape == (1, 1 + 8, 32)
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 32, 64))  # the table's own grid
        other = model(torch.randn(1, 3, 80, 48))  # resized to 5 x 3
    assert [tuple(o.shape) for o in outs] == [(2, 32, 2, 4)] * 2
    assert tuple(other[-1].shape) == (1, 32, 5, 3)


@pytest.mark.parametrize('cls', VITS)
def test_square_checkpoint_resized_to_a_non_square_table(cls, tmp_path):
    torch.manual_seed(0)
    source = cls(dict(SMALL), img_size=32)  # 2 x 2
    source.init_weights()
    target = cls(dict(SMALL), img_size=(32, 64), init_cfg=save_backbone(source, tmp_path / 'c'))
    target.init_weights()
    expected = resize_pos_embed(source.pos_embed, (2, 2), (2, 4), mode='bicubic',
                                num_extra_tokens=1)
    torch.testing.assert_close(target.pos_embed, expected)


@pytest.mark.parametrize('img_size', [(32, 64, 3), 8, (64, 8), (32.0, 32)])
def test_bad_img_size_is_refused(img_size):
    with pytest.raises(ValueError, match='img_size must be an int or'):
        BViT(dict(SMALL), img_size=img_size)


def test_broad_t2t_img_size_tuple_and_without_cls_token():
    """mmpretrain's T2T_ViT takes an int only; here also (H, W), and with_cls_token=False
    initialises (mmpretrain's init_weights reaches for the missing cls token)."""
    assert shapes(BroadT2TViT(**T2T, img_size=(64, 64))) == shapes(BroadT2TViT(**T2T, img_size=64))
    torch.manual_seed(0)
    model = BroadT2TViT(**T2T, img_size=(64, 96), out_type='featmap', with_cls_token=False)
    model.init_weights()
    assert model.cls_token is None and model.patch_resolution == [4, 6]
    assert model.pos_embed.shape == (1, 4 * 6, 48)
    with torch.no_grad():
        assert tuple(model.eval()(torch.randn(1, 3, 64, 96))[0].shape) == (1, 48, 4, 6)
    with pytest.raises(ValueError, match='img_size must be an int or'):
        BroadT2TViT(**T2T, img_size=(64, 8))


# ---------------------------------------------------------------------------- with_cls_token
@pytest.mark.parametrize('cls', VITS)
def test_with_cls_token_false_has_no_cls_token_as_mmpretrain(cls):
    """As mmpretrain 1.2.0's VisionTransformer: no cls_token parameter and no cls slot in the
    position table; only allowed with an out_type that does not return the cls token."""
    with_cls = cls(dict(SMALL), img_size=64, out_type='featmap')
    ours = cls(dict(SMALL), img_size=64, out_type='featmap', with_cls_token=False)
    theirs = VisionTransformer(dict(SMALL), img_size=64, out_type='featmap',
                               with_cls_token=False)
    assert with_cls.with_cls_token and with_cls.cls_token is not None
    assert ours.cls_token is None and 'cls_token' not in ours.state_dict()
    assert ours.num_extra_tokens == theirs.num_extra_tokens == 0
    assert ours.pos_embed.shape == theirs.pos_embed.shape == (1, 16, 32)
    assert n_params(with_cls) - n_params(ours) == 2 * 32  # the token and its table slot
    assert ours.no_weight_decay() == {'pos_embed'}
    with pytest.raises(ValueError, match='with_cls_token=False needs an out_type'):
        cls(dict(SMALL), with_cls_token=False)  # out_type='cls_token'
    with pytest.raises(ValueError):  # mmpretrain refuses the same
        VisionTransformer(dict(SMALL), with_cls_token=False)


@pytest.mark.parametrize('cls', VITS)
def test_without_cls_token_forward_outputs_and_gradients(cls):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 48, 80)
    raw = cls(dict(SMALL), img_size=64, out_type='raw', with_cls_token=False)
    raw.init_weights()
    raw.eval()
    out = raw(x)[0]  # with autograd on: the joined (training) form
    assert out.shape == (2, 3 * 5, 32)
    with torch.no_grad():  # the inference form (BViT sums its broad attention layer by layer)
        torch.testing.assert_close(raw(x)[0], out, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in raw.parameters())
    featmap = cls(dict(SMALL), img_size=64, out_type='featmap', with_cls_token=False,
                  frozen_stages=0).eval()
    featmap.load_state_dict(raw.state_dict())
    with torch.no_grad():
        fm = featmap(x)[0]
    torch.testing.assert_close(fm, out.detach().transpose(1, 2).reshape(2, 32, 3, 5))
    assert not featmap.pos_embed.requires_grad


@pytest.mark.parametrize('cls', VITS)
@pytest.mark.parametrize('img_size, grid', [(64, (4, 4)), (32, (2, 2))])
def test_checkpoint_with_cls_token_loads_without_it(cls, img_size, grid, tmp_path):
    """A checkpoint made with a cls token loads into a model without one: its cls slot of the
    position table is dropped (then resized if the grid differs); its cls_token is unused."""
    torch.manual_seed(0)
    source = cls(dict(SMALL), img_size=img_size)
    source.init_weights()
    target = cls(dict(SMALL), img_size=64, out_type='featmap', with_cls_token=False,
                 init_cfg=save_backbone(source, tmp_path / 'ckpt.pth'))
    target.init_weights()
    expected = resize_pos_embed(source.pos_embed[:, 1:], grid, (4, 4), mode='bicubic',
                                num_extra_tokens=0)
    torch.testing.assert_close(target.pos_embed, expected)
    torch.testing.assert_close(target.layers[0].attn.qkv.weight, source.layers[0].attn.qkv.weight)
    # and a model without a cls token loads its own kind
    again = cls(dict(SMALL), img_size=64, out_type='featmap', with_cls_token=False,
                init_cfg=save_backbone(target, tmp_path / 'no_cls.pth'))
    again.init_weights()
    torch.testing.assert_close(again.pos_embed, target.pos_embed)


# ---------------------------------------------------------------------------- arch dicts
@pytest.mark.parametrize('cls', VITS)
def test_arch_dict_without_head_dims(cls):
    derived = cls(dict(SMALL))
    explicit = cls(dict(SMALL, head_dims=16))
    assert derived.head_dims == 16 and derived.layers[0].attn.head_dims == 16
    assert shapes(derived) == shapes(explicit)
    other = cls(dict(SMALL, head_dims=8))  # an explicit value still wins
    assert other.head_dims == 8 and other.layers[0].attn.qkv.weight.shape == (3 * 2 * 8, 32)


def test_mmpretrain_arch_dict_gives_the_named_arch():
    """mmpretrain's own 'deit-tiny' arch dict (no head_dims) builds the same BViT as 'tiny'."""
    arch = VisionTransformer.arch_zoo['deit-tiny']
    assert 'head_dims' not in arch
    assert shapes(BViT(dict(arch))) == shapes(BViT('tiny'))


@pytest.mark.parametrize('cls', VITS)
def test_arch_dict_missing_keys_is_refused(cls):
    arch = {k: v for k, v in SMALL.items() if k != 'feedforward_channels'}
    with pytest.raises(ValueError, match=r"missing keys \['feedforward_channels'\].*required "
                                         r"\[.*'num_heads'.*\], optional \['head_dims'\]"):
        cls(arch)
    with pytest.raises(ValueError, match=r"unknown keys \['depths'\]"):
        cls(dict(SMALL, depths=[2]))


# ---------------------------------------------------------------------------- out_indices
def _with_out_indices(name: str, out_indices):
    builders = {
        'BViT': lambda: BViT(dict(SMALL), out_indices=out_indices),
        'DenseDeiT': lambda: DenseDeiT(dict(SMALL), out_indices=out_indices),
        'BroadSwinTransformer': lambda: BroadSwinTransformer(SWIN, window_size=4,
                                                             out_indices=out_indices),
        'DenseSwinTransformer': lambda: DenseSwinTransformer(SWIN, window_size=4,
                                                             out_indices=out_indices),
        'PSLT': lambda: PSLT(dict(embed_dims=12, depths=(1, 1, 1, 1), num_heads=(2, 2)),
                             out_indices=out_indices),
        'FCViT': lambda: FCViT(dict(depths=[1] * 4, widths=[8, 16, 16, 16],
                                    mlp_ratios=[2] * 4), out_indices=out_indices),
        'BroadT2TViT': lambda: BroadT2TViT(**T2T, out_indices=out_indices),
    }
    return builders[name]()


FAMILIES = ['BViT', 'DenseDeiT', 'BroadSwinTransformer', 'DenseSwinTransformer', 'PSLT', 'FCViT',
            'BroadT2TViT']


@pytest.mark.parametrize('name', FAMILIES)
@pytest.mark.parametrize('bad', [{1: 1}, {0, 1}, '1'])
def test_out_indices_must_be_an_int_or_a_sequence(name, bad):
    """A dict's keys were taken as indices; mmpretrain refuses it, and so does every family."""
    with pytest.raises(TypeError, match='out_indices must be an int or a sequence of ints'):
        _with_out_indices(name, bad)


@pytest.mark.parametrize('name', FAMILIES)
def test_out_indices_int_list_and_tuple(name):
    assert _with_out_indices(name, 1).out_indices == (1,)
    assert _with_out_indices(name, [1, 0]).out_indices == (0, 1)
    assert _with_out_indices(name, (-1,)).out_indices[0] > 0
    with pytest.raises(ValueError, match='out_indices must be stage indices'):
        _with_out_indices(name, (1.0,))


# ---------------------------------------------------------------------------- frozen_stages
@pytest.mark.parametrize('cls', [BroadSwinTransformer, DenseSwinTransformer])
def test_swin_frozen_stages_follow_mmdet(cls):
    """frozen_stages=0 freezes the patch embedding only; k > 0 also stages 0..k-1 and their
    output norms: mmpretrain's Swin with k - 1 (it freezes stages 0..k)."""
    kwargs = dict(arch=SWIN, window_size=4, out_indices=(0, 1, 2, 3))
    zero = cls(**kwargs, frozen_stages=0).train()
    assert frozen_names(zero) == {n for n, _ in zero.named_parameters()
                                  if n.startswith('patch_embed.')}
    assert zero.stages[0].training and not zero.patch_embed.training
    mmp_zero = frozen_names(SwinTransformer(**kwargs, frozen_stages=0))
    assert any(n.startswith('stages.0.') for n in mmp_zero)  # the convention that differs
    for k in range(1, 5):
        ours = cls(**kwargs, frozen_stages=k).train()
        ours_frozen = {n for n in frozen_names(ours) if not n.endswith('mix_weight')}
        assert ours_frozen == frozen_names(SwinTransformer(**kwargs, frozen_stages=k - 1))
        assert all(not p.requires_grad for p in ours.stages[k - 1].parameters())
        assert all(not ours.stages[i].training for i in range(k))
        if k < 4:
            assert all(p.requires_grad for p in ours.stages[k].parameters())
            assert ours.stages[k].training


def test_swin_frozen_stages_match_mmdet_counts():
    from mmdet.models.backbones import SwinTransformer as MMDetSwin

    kwargs = dict(embed_dims=8, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4], window_size=4,
                  out_indices=(0, 1, 2, 3))
    for k in range(5):
        ours = BroadSwinTransformer(SWIN, window_size=4, out_indices=(0, 1, 2, 3),
                                    frozen_stages=k)
        theirs = MMDetSwin(**kwargs, frozen_stages=k)
        count = []
        for model in (ours, theirs):
            frozen = frozen_names(model)
            count.append(sum(p.numel() for n, p in model.named_parameters() if n in frozen))
        assert count[0] == count[1] > 0, k


@pytest.mark.parametrize('k', [0, 2])
def test_pslt_frozen_stages_follow_mmdet(k):
    model = PSLT(dict(embed_dims=12, depths=(1, 1, 1, 1), num_heads=(2, 2)), frozen_stages=k,
                 out_indices=(0, 1, 2, 3)).train()
    assert all(not p.requires_grad for p in model.stem.parameters())
    for i, stage in enumerate(model.stages):
        assert all(p.requires_grad == (i >= k) for p in stage.parameters()), i
        assert stage.training == (i >= k)
