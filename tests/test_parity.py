"""Parity with the authors' released code: converted weights reproduce ``golden/`` outputs.

Every golden file of a family is found by its name pattern and every input in it is checked:
``max|ours - golden| <= 1e-4 * max|golden|`` for each output and feature tensor.
"""
import glob
import os.path as osp

import pytest
import torch

REL_TOL = 1e-4


def golden_files(golden_dir: str, pattern: str) -> list:
    files = sorted(glob.glob(osp.join(golden_dir, pattern)))
    if not files:
        pytest.fail(f'no golden file matches {pattern} in {golden_dir}')
    return files


def load_golden(path: str) -> dict:
    data = torch.load(path, map_location='cpu', weights_only=True)
    assert len(data['inputs']) == len(data['outputs']) > 0, f'{path} has no inputs'
    return data


def assert_close(ours: torch.Tensor, ref: torch.Tensor, what: str) -> float:
    ref = ref.float()
    assert ours.shape == ref.shape, f'{what}: shape {tuple(ours.shape)} != {tuple(ref.shape)}'
    err = (ours.float() - ref).abs().max().item() / ref.abs().max().item()
    assert err <= REL_TOL, f'{what}: relative error {err:.3g} > {REL_TOL}'
    return err


# ----------------------------------------------------------------------------- PSLT
# (section owned by the PSLT work)
PSLT_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PSLT_TINY_CONFIG = osp.join(PSLT_ROOT, 'configs', 'pslt', 'pslt-tiny_8xb128_in1k.py')


def _pslt_converted(data: dict) -> dict:
    from visattn_mm.converters import convert
    return {k: v.float() if v.is_floating_point() else v
            for k, v in convert('pslt', data['state_dict']).items()}


def _pslt_released_shift_state(sizes: list, window: int = 7) -> list:
    """``ladder_shift`` of one released detection-backbone instance before each input.

    The golden inputs run in order through one instance of the released code, and its
    ``LadderSABlock`` switches its shift off for good the first time it sees a map whose short
    side is <= the window. Stage 3 is at stride 16 and stage 4 at stride 32 (sides rounded up).
    """
    states, seen_small = [], [False, False]
    for height, width in sizes:
        for i, stride in enumerate((16, 32)):
            seen_small[i] |= -(-min(height, width) // stride) <= window
        states.append(tuple(not small for small in seen_small))
    return states


def test_pslt_classifier_parity(golden_dir, build_model):
    for path in golden_files(golden_dir, 'pslt_tiny*.pth'):
        data = load_golden(path)
        model = build_model(PSLT_TINY_CONFIG)
        model.load_state_dict(_pslt_converted(data), strict=True)
        model.eval()
        with torch.no_grad():
            for n, (image, logits) in enumerate(zip(data['inputs'], data['outputs'])):
                ours = model(image.float(), mode='tensor')
                assert_close(ours, logits, f'{osp.basename(path)} input {n} '
                                           f'{tuple(image.shape[-2:])} logits')


def test_pslt_detection_backbone_parity(golden_dir):
    from visattn_mm.models.backbones import PSLT

    for path in golden_files(golden_dir, 'pslt_det*.pth'):
        data = load_golden(path)
        backbone_sd = {k[len('backbone.'):]: v for k, v in _pslt_converted(data).items()
                       if k.startswith('backbone.')}
        shift_states = _pslt_released_shift_state([tuple(x.shape[-2:]) for x in data['inputs']])
        models = {}
        for n, (image, maps) in enumerate(zip(data['inputs'], data['outputs'])):
            state = shift_states[n]
            if state not in models:
                models[state] = PSLT('base', out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'),
                                     ladder_shift=state)
                models[state].load_state_dict(backbone_sd, strict=True)
                models[state].eval()
            with torch.no_grad():
                ours = models[state](image.float())
            assert len(ours) == len(maps) == 4
            for i, (o, g) in enumerate(zip(ours, maps)):
                assert_close(o, g, f'{osp.basename(path)} input {n} {tuple(image.shape[-2:])} '
                                   f'stage {i}')


# ----------------------------------------------------------------------------- FCViT
# (section owned by the FCViT work)
FCVIT_TINY_CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                             'configs', 'fcvit', 'fcvit-tiny_8xb128_in1k.py')


@pytest.fixture
def fcvit_one_thread():
    """One thread: on a shared 2-core machine, waiting OpenMP threads cost more than they gain."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fcvit_classifier_parity(golden_dir, fcvit_one_thread, build_model):
    """Logits of the tiny ImageNet config and the raw stage outputs (``network.0/2/4/6``)."""
    from visattn_mm.converters import convert

    for path in golden_files(golden_dir, 'fcvit_*.pth'):
        data = load_golden(path)
        assert data['meta']['feature_modules'] == ['network.0', 'network.2', 'network.4',
                                                   'network.6']
        model = build_model(FCVIT_TINY_CONFIG)
        state_dict = {k: v.float() if v.is_floating_point() else v
                      for k, v in convert('fcvit', data['state_dict']).items()}
        model.load_state_dict(state_dict, strict=True)
        model.eval()
        # hooks read the stage outputs before any output norm, without changing the model
        stage_outputs = []
        for stage in model.backbone.stages:
            stage.register_forward_hook(lambda module, args, out: stage_outputs.append(out))
        for n, (image, logits, features) in enumerate(
                zip(data['inputs'], data['outputs'], data['features'])):
            what = f'{osp.basename(path)} input {n} {tuple(image.shape[-2:])}'
            stage_outputs.clear()
            with torch.no_grad():
                ours = model(image.float(), mode='tensor')
            assert_close(ours, logits, f'{what} logits')
            assert len(stage_outputs) == len(features) == 4
            for name, o, g in zip(data['meta']['feature_modules'], stage_outputs, features):
                assert_close(o, g, f'{what} {name}')


@pytest.mark.parametrize('family, name', [('pslt', 'PSLT'), ('fcvit', 'FCViT')])
def test_converter_refuses_other_families(golden_dir, family, name):
    """Every other family's golden checkpoint is refused, by the dispatcher and the module."""
    import importlib

    from visattn_mm.converters import convert
    module = importlib.import_module(f'visattn_mm.converters.{family}')

    others = [p for p in golden_files(golden_dir, '*.pth')
              if not osp.basename(p).startswith(family)]
    assert len(others) >= 2, 'expected golden files of other families'
    for path in others:
        state_dict = load_golden(path)['state_dict']
        assert not module.looks_like(state_dict), path
        with pytest.raises(ValueError, match=f"not an authors' '{family}' checkpoint"):
            convert(family, state_dict)
        with pytest.raises(ValueError, match=f"not an authors' {name} checkpoint"):
            module.convert(state_dict)
