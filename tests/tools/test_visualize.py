"""Attention pictures (visattn_mm/visualization, tools/visualize.py) on tiny archs, 64x64 images."""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

from visattn_mm.models.backbones import (PSLT, BroadSwinTransformer, BroadT2TViT, BViT,
                                         DenseDeiT, DenseSwinTransformer, FCViT)
from visattn_mm.visualization import (FAMILY_KINDS, broad_cls_attention, broad_swin_attention,
                                      check_kind, dense_mix_weights, fcvit_context_maps,
                                      grid_size, kinds_of, pslt_ladder_attention, render,
                                      to_tensor)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VIT = dict(embed_dims=32, num_layers=3, num_heads=2, head_dims=16, feedforward_channels=64)


pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


@pytest.fixture(scope='module')
def backbones():
    """One tiny backbone per family; stage maps of the 64x64 input are larger than a window
    (PSLT stage 3: 4x4 tokens in 2x2 windows, shifts 0, -1, +1), so nothing is padded."""
    torch.manual_seed(0)
    models = dict(
        PSLT=PSLT(arch=dict(embed_dims=6, depths=(1, 1, 2, 1), num_heads=(2, 2),
                            window_size=2)),
        FCViT=FCViT(arch=dict(depths=[1, 1, 1, 1], widths=[8, 16, 16, 16],
                              mlp_ratios=[2, 2, 2, 2])),
        BViT=BViT(arch=VIT, img_size=64, patch_size=8),
        BroadT2TViT=BroadT2TViT(img_size=64, embed_dims=32, num_layers=2,
                                layer_cfgs=dict(num_heads=2), t2t_cfg=dict(token_dims=16)),
        BroadSwinTransformer=BroadSwinTransformer(
            arch=dict(embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 1, 2, 2)),
            img_size=64, window_size=2),
        DenseDeiT=DenseDeiT(arch=VIT, img_size=64, patch_size=8),
        DenseSwinTransformer=DenseSwinTransformer(
            arch=dict(embed_dims=16, depths=(1, 2, 3, 1), num_heads=(1, 1, 2, 2)),
            img_size=64, window_size=2),
    )
    return {k: m.eval() for k, m in models.items()}


@pytest.fixture(scope='module')
def image():
    rng = np.random.RandomState(0)
    img = (rng.rand(64, 64, 3) * 255).astype(np.uint8)
    return img, to_tensor(img)


CASES = [(family, kind) for family, kinds in FAMILY_KINDS.items() for kind in kinds]


@pytest.mark.parametrize('family,kind', CASES)
def test_every_kind_writes_a_png(backbones, image, tmp_path, family, kind):
    img, x = image
    (path, size), = render(backbones[family], img, x, kind, str(tmp_path))
    png = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert png is not None and png.ndim == 3, 'not a readable colour PNG'
    assert png.shape[:2] == size
    if kind == 'dense_weights':
        n = len(dense_mix_weights(backbones[family]))
        assert size == (400, 400 * n)  # 4-inch panels at 100 dpi
    else:
        panels = {'ladder': 3, 'branch': 3, 'context': 8, 'broad': None}[kind]
        if panels is None:
            b = backbones[family]
            panels = 1 + len(getattr(b, 'layers', None) or getattr(b, 'encoder', None)
                             or b.stages[2].blocks)
        cols = {'ladder': 3, 'branch': 3, 'context': 2}.get(kind, 4)
        assert size == grid_size(img.shape, panels, cols)
    assert png.std() > 1, 'the picture is constant'


def test_pslt_rows_are_softmax_rows_and_the_field_grows(backbones, image):
    img, x = image
    res = pslt_ladder_attention(backbones['PSLT'], x, query=(40, 20))
    assert res['grid'] == (4, 4) and [s for _, s in res['window_shift']] == [0, -1, 1]
    for M in res['matrices']:
        torch.testing.assert_close(M.sum(-1), torch.ones(16))
    for maps in (res['direct'], res['composed']):
        for m in maps:
            assert m.min() >= 0 and m.sum() == pytest.approx(1, abs=1e-5)
    # the query's own window (4 tokens) in branch 0; through the ladder more tokens are reached
    support = [(m > 1e-6).sum() for m in res['composed']]
    assert support[0] == 4 and support[2] > support[0]
    assert (res['direct'][1] > 1e-6).sum() == 4  # each branch alone sees one 2x2 window


def test_broad_rows_sum_to_one(backbones, image):
    img, x = image
    for family in ('BViT', 'BroadT2TViT'):
        res = broad_cls_attention(backbones[family], x)
        for row in [res['broad_row'], *res['layer_rows']]:
            assert row.min() >= 0 and row.sum() == pytest.approx(1, abs=1e-5)
        assert res['broad'].shape == res['grid']
    # the broad logits are the sum of the layers' (BViT: one softmax over the joined q, k)
    res = broad_cls_attention(backbones['BViT'], x)
    q, k = (torch.cat(t, dim=-1) for t in (res['qs'], res['ks']))
    joined = ((q[0, :, :1] @ k[0].transpose(-2, -1)) * 16 ** -0.5).softmax(-1).mean(0)[0]
    np.testing.assert_allclose(res['broad_row'], joined.numpy(), atol=1e-6)
    res = broad_swin_attention(backbones['BroadSwinTransformer'], x)
    for row in [res['broad_row'], *res['layer_rows']]:
        assert row.sum() == pytest.approx(1, abs=1e-5)
    assert (res['broad'] > 0).sum() == res['window'] ** 2  # one window of the 4x4 map


@pytest.mark.parametrize('family', ['BViT', 'BroadT2TViT'])
def test_broad_picture_without_a_cls_token_is_refused(image, tmp_path, family):
    """Built with with_cls_token=False, a BViT or BroadT2TViT has no cls row to draw: a
    ValueError says what was wrong and what is accepted (row 0 is not read as the cls token's),
    both from broad_cls_attention and through render (tools/visualize.py's path)."""
    img, x = image
    torch.manual_seed(0)
    if family == 'BViT':
        model = BViT(arch=VIT, img_size=64, patch_size=8, with_cls_token=False,
                     out_type='featmap')
    else:
        model = BroadT2TViT(img_size=64, embed_dims=32, num_layers=2,
                            layer_cfgs=dict(num_heads=2), t2t_cfg=dict(token_dims=16),
                            with_cls_token=False, out_type='featmap')
    assert model.cls_token is None and model.num_extra_tokens == 0
    message = (rf'{family} was built with with_cls_token=False.*no cls-token broad attention'
               r'.*needs a BViT or BroadT2TViT with a cls token')
    with pytest.raises(ValueError, match=message):
        broad_cls_attention(model.eval(), x)
    with pytest.raises(ValueError, match=message):
        render(model, img, x, 'broad', str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_fcvit_similarity_matches_the_module(backbones, image):
    """The recomputed similarity times the context vector is the GlobalContext output."""
    img, x = image
    model = backbones['FCViT']
    rnd = model.stages[1][0].token_mixer.rounds[1]
    gc = rnd.context
    seen = {}
    handle = rnd.register_forward_hook(lambda m, a, out: seen.update(x=a[0]))
    try:
        res = fcvit_context_maps(model, x)
        model(x)
    finally:
        handle.remove()
    with torch.no_grad():
        seen['out'] = gc(seen['x'])
    entry = next(r for r in res if r['stage'] == 1 and r['round'] == 1)
    B, C, H, W = seen['x'].shape
    g = seen['x'].reshape(B, C, -1).mean(-1)
    c = gc.fc_out(gc.fc_compete(g).reshape(B, 2, -1).amax(1)).reshape(gc.num_heads, -1, 1, 1)
    sim = torch.from_numpy(entry['heads'])[:, None]
    torch.testing.assert_close((sim * c).reshape(1, C, H, W), seen['out'], rtol=1e-4, atol=1e-5)
    assert len(res) == 8 and entry['map'].shape == (H, W)


def test_dense_weights_use_exactly_the_lower_triangle(backbones):
    for family, layers in (('DenseDeiT', lambda b: [[l.attn for l in b.layers]]),
                           ('DenseSwinTransformer', lambda b: [
                               [blk.attn.w_msa for blk in st.blocks] for st in b.stages
                               if len(st.blocks) > 1])):
        mats = dense_mix_weights(backbones[family])
        groups = layers(backbones[family])
        assert len(mats) == len(groups)
        for (_, mat), attns in zip(mats, groups):
            n = len(attns)
            assert mat.shape == (n, n)
            np.testing.assert_array_equal(np.isfinite(mat), np.tri(n, k=-1, dtype=bool))
            for i, attn in enumerate(attns):
                np.testing.assert_allclose(mat[i, :i], attn.mix_weight[:i].detach().numpy())


def test_kinds_are_checked(backbones):
    with pytest.raises(ValueError, match=r"FCViT has no 'broad' picture.*\['context'\]"):
        check_kind(backbones['FCViT'], 'broad')
    with pytest.raises(ValueError, match='PSLT.*ladder.*branch'):
        check_kind(backbones['PSLT'], 'dense_weights')
    with pytest.raises(ValueError, match='has no attention pictures'):
        kinds_of(torch.nn.Conv2d(3, 3, 1))


def test_cli_from_configs(tmp_path):
    """tools/visualize.py on a classification and a detection config (mmpretrain, mmdet)."""
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    try:
        import visualize
    finally:
        sys.path.pop(0)
    img = (np.random.RandomState(1).rand(80, 100, 3) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'in.png'), img)
    out = tmp_path / 'out'
    written = visualize.main([osp.join(ROOT, 'configs/pslt/pslt-tiny_8xb128_in1k.py'),
                              str(tmp_path / 'in.png'), '--out-dir', str(out),
                              '--size', '64', '--kind', 'ladder'])
    assert len(written) == 1 and cv2.imread(written[0]).shape[:2] == grid_size((64, 64), 3, 3)
    written = visualize.main([osp.join(ROOT, 'configs/dense/retinanet_dense-swin-t_fpn_1x_coco.py'),
                              str(tmp_path / 'in.png'), '--out-dir', str(out), '--size', '64'])
    assert [osp.basename(p) for p in written] == [
        'retinanet_dense-swin-t_fpn_1x_coco_denseswintransformer_dense_weights.png']
    with pytest.raises(ValueError, match='dense_weights'):
        visualize.main([osp.join(ROOT, 'configs/dense/retinanet_dense-swin-t_fpn_1x_coco.py'),
                        str(tmp_path / 'in.png'), '--out-dir', str(out), '--kind', 'ladder'])


def test_recomputed_weights_give_the_modules_outputs(backbones, image):
    """The softmax weights recomputed from hooked inputs reproduce what the fused attention
    computed: PSLT's shifted, masked, external-value branch and a BViT layer."""
    from visattn_mm.visualization.mechanisms import _window_attention_weights
    img, x = image
    branch = backbones['PSLT'].stages[2].blocks[-1].branches[1]  # shift -1, value from branch 0
    seen = {}

    def keep(m, args, kwargs, out):
        seen.update(args=args, kwargs=kwargs, out=out)

    handle = branch.attn.w_msa.register_forward_hook(keep, with_kwargs=True)
    try:
        with torch.no_grad():
            backbones['PSLT'](x)
    finally:
        handle.remove()
    w_msa, kw = branch.attn.w_msa, seen['kwargs']
    assert kw['mask'] is not None
    attn = _window_attention_weights(w_msa, seen['args'][0], kw['v'], kw['mask'],
                                     kw['window_size'])
    _, _, v = w_msa.project(seen['args'][0], kw['v'])
    Bw, h, N, d = v.shape
    out = w_msa.proj((attn @ v).transpose(1, 2).reshape(Bw, N, h * d))
    torch.testing.assert_close(out, seen['out'], rtol=1e-4, atol=1e-5)

    model = backbones['BViT']
    outs = []
    handle = model.layers[1].attn.register_forward_hook(lambda m, a, o: outs.append(o[0]))
    try:
        res = broad_cls_attention(model, x)
    finally:
        handle.remove()
    attn = model.layers[1].attn
    q, k, v = res['qs'][1], res['ks'][1], res['vs'][1]
    weights = ((q @ k.transpose(-2, -1)) * attn.scale).softmax(-1)
    np.testing.assert_allclose(weights.mean(1)[0, 0].numpy(), res['layer_rows'][1], atol=1e-6)
    B, H, N, d = v.shape
    mine = attn.proj((weights @ v).transpose(1, 2).reshape(B, N, H * d))
    torch.testing.assert_close(mine, outs[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('config,hw,expected', [
    ('configs/pslt/pslt-tiny_8xb128_in1k.py', (300, 500), (224, 224)),  # centre crop
    ('configs/fcvit/retinanet_fcvit-b12_fpn_1x_coco.py', (300, 500), (800, 1333)),
    ('configs/fcvit/fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py', (300, 500), (512, 853)),
])
def test_config_test_size(config, hw, expected):
    from visattn_mm.visualization import config_test_size, load_config
    assert config_test_size(load_config(osp.join(ROOT, config)), hw) == expected
