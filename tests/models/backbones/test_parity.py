"""Parity with the authors' released code: converted weights reproduce ``golden/`` outputs.

Every golden file of a family is found by its name prefix, its model is built from the file's
``meta['arch']`` (an arch this test does not know fails it), and every input in it is checked:
``max|ours - golden| <= 1e-4 * max|golden|`` for each output and feature tensor.
"""
import glob
import os.path as osp
from typing import Callable, Dict, Sequence, Tuple

import pytest
import torch
from conftest import build_config_model, build_in_scope

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


ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def converted(family: str, data: dict) -> dict:
    from visattn_mm.converters import convert
    return {k: v.float() if v.is_floating_point() else v
            for k, v in convert(family, data['state_dict']).items()}


def classifier_runner(model, data: dict, family: str, stage_hooks: Sequence = ()):
    """``run(image) -> (logits, features)`` of a converted mmpretrain classifier; features are
    the outputs of ``stage_hooks`` (modules), read by forward hooks."""
    model.load_state_dict(converted(family, data), strict=True)
    model.eval()
    features: list = []
    for module in stage_hooks:
        module.register_forward_hook(lambda m, args, out: features.append(out))

    def run(image, n):
        features.clear()
        return model(image, mode='tensor'), list(features)
    return run


def config_model(config: str, **backbone):
    """The ``model`` of a shipped config, built in its default scope, backbone overridden."""
    return build_config_model(osp.join(ROOT, config), **backbone)


def vit_classifier(backbone: dict, channels: int):
    return build_in_scope(dict(type='ImageClassifier', backbone=backbone, head=dict(
        type='LinearClsHead', num_classes=1000, in_channels=channels)))


def pslt_released_shift_state(sizes: list, window: int = 7) -> list:
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


def pslt_detection_runner(data: dict):
    from visattn_mm.models.backbones import PSLT
    backbone_sd = {k[len('backbone.'):]: v for k, v in converted('pslt', data).items()
                   if k.startswith('backbone.')}
    states = pslt_released_shift_state([tuple(x.shape[-2:]) for x in data['inputs']])
    models = {}

    def run(image, n):
        if states[n] not in models:
            models[states[n]] = PSLT('base', out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN'),
                                     ladder_shift=states[n])
            models[states[n]].load_state_dict(backbone_sd, strict=True)
            models[states[n]].eval()
        return models[states[n]](image), []
    return run


def fcvit_tiny_runner(data: dict):
    model = config_model('configs/fcvit/fcvit-tiny_8xb128_in1k.py')
    # the stage outputs before any output norm (``network.0/2/4/6`` of the released model)
    return classifier_runner(model, data, 'fcvit', stage_hooks=model.backbone.stages)


# meta['arch'] of a golden file -> (family, runner factory); an arch not listed fails the test
ARCHS: Dict[str, Tuple[str, Callable]] = {
    'PSLT_tiny (embed 24)': ('pslt', lambda data: classifier_runner(
        config_model('configs/pslt/pslt-tiny_8xb128_in1k.py'), data, 'pslt')),
    'PSLT (embed 36) detection backbone, BN, out_indices (0,1,2,3)': (
        'pslt', pslt_detection_runner),
    'fcvit_tiny': ('fcvit', fcvit_tiny_runner),
    'BViT-5M as released: dim 192, depth 12, heads 3, dim_head 64, mlp 768, conv stem 7x7/2, '
    'broad weight 0.4, pool 192': ('bvit', lambda data: classifier_runner(vit_classifier(
        dict(type='visattn_mm.BViT', arch='tiny', released_stem=True), 192), data, 'bvit')),
    'dDeiT_Ti as released: dim 192, depth 12, heads 2, dim_head 64, mlp 768': (
        'dense', lambda data: classifier_runner(vit_classifier(
            dict(type='visattn_mm.DenseDeiT', arch='tiny'), 192), data, 'dense')),
}
FAMILIES = sorted({family for family, _ in ARCHS.values()})



def as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@pytest.mark.parametrize('family', FAMILIES)
def test_parity(family, golden_dir, one_thread):
    """Every golden file of the family, built from its meta['arch'], every input and tensor."""
    for path in golden_files(golden_dir, f'{family}_*.pth'):
        data = load_golden(path)
        name, arch = osp.basename(path), data['meta']['arch']
        if arch not in ARCHS:
            pytest.fail(f'{name}: unknown arch {arch!r}; known: {sorted(ARCHS)}')
        assert ARCHS[arch][0] == family, f'{name}: arch {arch!r} is a {ARCHS[arch][0]} model'
        modules = data['meta'].get('feature_modules') or []
        inputs, outputs, features = data['inputs'], data['outputs'], data['features']
        assert len(outputs) == len(inputs), f'{name}: {len(outputs)} outputs, {len(inputs)} inputs'
        assert len(features) == (len(inputs) if modules else 0) or \
            all(len(f) == 0 for f in features), f'{name}: {len(features)} feature entries'
        run = ARCHS[arch][1](data)
        for n, image in enumerate(inputs):
            what = f'{name} input {n} {tuple(image.shape[-2:])}'
            with torch.no_grad():
                ours, ours_features = run(image.float(), n)
            ours, ref = as_list(ours), as_list(outputs[n])
            assert len(ours) == len(ref), f'{what}: {len(ours)} outputs, golden {len(ref)}'
            for i, (o, g) in enumerate(zip(ours, ref)):
                assert_close(o, g, f'{what} output {i}')
            if modules:
                assert len(ours_features) == len(features[n]) == len(modules), what
                for module, o, g in zip(modules, ours_features, features[n]):
                    assert_close(o, g, f'{what} {module}')


@pytest.mark.parametrize('family, name', [('pslt', 'PSLT'), ('fcvit', 'FCViT'), ('bvit', 'BViT'),
                                          ('dense', 'Dense')])
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
