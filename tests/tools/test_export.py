"""ONNX export (visattn_mm.deployment, tools/deployment/export_onnx.py).

Every family's backbone is exported once with dynamic batch, height and width, and onnxruntime
must reproduce torch at two other input sizes (and another batch): ``max|onnx - torch| <= 1e-4 *
max|torch|`` for every output, as in the parity tests. Small archs keep it fast; each has every
mechanism of its family (window pads, shifts and masks, position-table resizing, broad and dense
links). The window families are exported and checked at sizes whose stage maps take the same
small-map branch (see visattn_mm.deployment.onnx); a size that takes the other one is refused
by the check.
"""
import os.path as osp
import runpy
import sys

import pytest
import torch

from visattn_mm.deployment import export_mode, export_onnx, onnx_errors
from visattn_mm.models.backbones import (BroadSwinTransformer, BroadT2TViT, BViT, DenseDeiT,
                                         DenseSwinTransformer, FCViT, PSLT)

pytest.importorskip('onnxruntime')

REL_TOL = 1e-4
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

VIT = dict(embed_dims=48, num_layers=4, num_heads=3, head_dims=16, feedforward_channels=96)
SWIN = dict(embed_dims=8, depths=[2, 2, 2, 2], num_heads=[2, 2, 4, 4])
PSLT_SMALL = dict(embed_dims=12, depths=(1, 1, 1, 1), num_heads=(2, 2), window_size=4)
# name -> (builder, example (H, W), the other sizes); maps of the window families stay larger
# than the window in every stage but the last, where all sizes take the same branch
CASES = {
    'PSLT': (lambda: PSLT(arch=PSLT_SMALL, out_indices=(0, 1, 2, 3)),
             (160, 160), [(250, 190), (288, 224)]),  # ladder maps 10x10 .. 5x5 (window 4)
    'FCViT': (lambda: FCViT(arch=dict(depths=[1, 1, 2, 1], widths=[16, 32, 48, 64],
                                      mlp_ratios=[4, 4, 4, 4]), out_indices=(0, 1, 2, 3),
                            layer_scale_init_value=1.), (64, 64), [(96, 80), (45, 71)]),
    # (the tiny BViT classifier is exported whole by the command-line test)
    'BViT': (lambda: BViT(arch=VIT, img_size=64, out_type='featmap', out_indices=(1, 3)),
             (64, 64), [(96, 80), (50, 70)]),
    'DenseDeiT': (lambda: DenseDeiT(arch=VIT, img_size=64, out_type='featmap',
                                    out_indices=(1, 3)), (64, 64), [(96, 80), (50, 70)]),
    'BroadSwinTransformer': (lambda: BroadSwinTransformer(arch=SWIN, window_size=4,
                                                          out_indices=(0, 1, 2, 3)),
                             (160, 128), [(100, 76), (128, 128)]),
    'DenseSwinTransformer': (lambda: DenseSwinTransformer(arch=SWIN, window_size=4,
                                                          out_indices=(0, 1, 2, 3)),
                             (160, 128), [(100, 76), (128, 128)]),
    'BroadT2TViT': (lambda: BroadT2TViT(embed_dims=48, num_layers=3,
                                        layer_cfgs=dict(num_heads=2), t2t_cfg=dict(token_dims=8),
                                        img_size=64, out_type='featmap', out_indices=(1, 2)),
                    (64, 64), [(96, 80), (50, 70)]),
}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = CASES[name][0]()
    with torch.no_grad():  # non-trivial norms and biases (zeros and ones at construction)
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


@pytest.mark.parametrize('name', CASES)
def test_backbone_onnx_follows_input_size(name, tmp_path):
    model = build(name)
    example, others = CASES[name][1], CASES[name][2]
    path = str(tmp_path / f'{name}.onnx')
    export_onnx(model, path, example, batch_size=2)
    errors = onnx_errors(path, model, others, batch_size=2)
    errors.update({('batch 1',) + s: e for s, e in
                   onnx_errors(path, model, others[:1], batch_size=1).items()})
    for shape, errs in errors.items():
        assert max(errs) <= REL_TOL, f'{name} at {shape}: relative errors {errs}'


def test_written_out_attention_exports(tmp_path, monkeypatch):
    """Models built with VISATTN_FUSED_ATTN=0 export the formula; the same numbers."""
    monkeypatch.setenv('VISATTN_FUSED_ATTN', '0')
    model = build('PSLT')
    assert not any(getattr(m, 'fused_attn', False) for m in model.modules())
    errors = export_onnx(model, str(tmp_path / 'pslt.onnx'), (160, 160),
                         verify_shapes=[(250, 190)])
    assert set(errors) == {(160, 160), (250, 190)}
    assert max(max(e) for e in errors.values()) <= REL_TOL


def test_other_small_map_branch_is_refused(tmp_path):
    """Exported where the last stage is one window (5x5 -> 4x4 at window 4: the small-map
    rule), the graph cannot serve a size whose last map is larger; the check says so."""
    model = build('PSLT')
    with pytest.warns(UserWarning, match='onnxruntime failed'), \
            pytest.raises(RuntimeError, match='small-map'):
        export_onnx(model, str(tmp_path / 'pslt.onnx'), (128, 128), verify_shapes=[(160, 160)])


def test_export_mode_restores_the_model():
    model = BroadSwinTransformer(arch=SWIN, window_size=4).train()
    pads = [m for m in model.modules() if type(m).__name__ == 'AdaptivePadding']
    assert pads
    with export_mode(model):
        assert not model.training
        assert all('forward' in vars(m) for m in pads)
        x = torch.randn(1, 3, 50, 38)  # pads at the patch embedding and every merging
        with torch.no_grad():  # (as below: with autograd the attention takes another path)
            patched = model(x)
    assert model.training and not any('forward' in vars(m) for m in pads)
    model.eval()
    with torch.no_grad():
        for a, b in zip(patched, model(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def _run_tool(monkeypatch, *args: str) -> None:
    path = osp.join(ROOT, 'tools', 'deployment', 'export_onnx.py')
    monkeypatch.setattr(sys, 'argv', [path, *args])
    runpy.run_path(path, run_name='__main__')


def test_cli_whole_classifier_and_backbone(tmp_path, monkeypatch, capsys):
    import onnx
    config = osp.join(ROOT, 'configs', 'bvit', 'bvit-tiny_4xb256_in1k.py')
    out = str(tmp_path / 'bvit.onnx')
    _run_tool(monkeypatch, config, out, '--shape', '64', '64', '--check-shape', '80', '96')
    printed = capsys.readouterr().out
    assert 'at 64x64' in printed and 'at 80x96' in printed
    graph = onnx.load(out).graph
    assert [o.name for o in graph.output] == ['out0']  # the head's logits
    dims = graph.output[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == 'batch' and dims[1].dim_value == 1000
    assert [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim] == \
        ['batch', '', 'height', 'width']

    out = str(tmp_path / 'bvit_backbone.onnx')
    _run_tool(monkeypatch, config, out, '--backbone-only', '--shape', '64', '64', '--no-check')
    assert 'wrote' in capsys.readouterr().out
    dims = onnx.load(out).graph.output[0].type.tensor_type.shape.dim
    assert len(dims) == 2 and dims[0].dim_param == 'batch'  # the cls token (B, C)


def test_library_pieces_follow_the_size(tmp_path):
    """mmseg's Upsample (FPN heads) and nn.AdaptiveAvgPool2d to several cells (UPerNet's
    pyramid pooling) export with dynamic sizes through export_mode's traced forwards."""
    from mmseg.models.utils import Upsample
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1),
                                Upsample(scale_factor=2, mode='bilinear', align_corners=False),
                                torch.nn.AdaptiveAvgPool2d((3, 6)))
    errors = export_onnx(model, str(tmp_path / 'pieces.onnx'), (20, 20),
                         verify_shapes=[(27, 13), (5, 9)])
    assert max(max(e) for e in errors.values()) <= REL_TOL


def test_two_stage_detectors_are_refused():
    from visattn_mm.deployment import TensorForward

    class TwoStage(torch.nn.Module):
        rpn_head = roi_head = torch.nn.Identity()

    with pytest.raises(ValueError, match='backbone-only'):
        TensorForward(TwoStage())
