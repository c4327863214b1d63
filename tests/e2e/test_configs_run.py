"""Every shipped family x task config of tests/e2e/cases.py trains and is scored by its real
evaluator on a mini set: one case per toolbox and model type through ``mim train`` + ``mim test``
(its own processes, as a user runs them), the others in this process (``Runner.from_cfg``,
``train()``, ``test()``).

These check that the recipes run, not that they learn (a step or a few from scratch): the
metrics must exist and be finite and >= 0. tests/e2e/test_learning.py checks learning.
"""
import math
import os.path as osp

import pytest
from cases import CASES, MIM_CASES, RUNNER_CASES
from harness import (ROOT, check_metrics, mim_train_then_test, run_in_process,
                     session_mini_set)

from visattn_mm.testing.mini_config import make_mini_config

pytestmark = pytest.mark.e2e

# name part -> model type; one mim case each
MODEL_TYPES = {'cls': 'classifier', 'retinanet': 'RetinaNet', 'maskrcnn': 'Mask R-CNN',
               'reid': 're-ID', 'fpn': 'segmentor', 'upernet': 'segmentor'}


def model_type(name: str) -> str:
    kinds = {MODEL_TYPES[part] for part in name.split('-') if part in MODEL_TYPES}
    assert len(kinds) == 1, (name, kinds)
    return kinds.pop()


def mini_cfg(name: str, tmp_path_factory):
    case = CASES[name]
    config = osp.join(ROOT, case.config)
    if not osp.isfile(config):
        pytest.fail(f'config {case.config} is missing')
    cfg = make_mini_config(config, session_mini_set(tmp_path_factory, case.data),
                           iters=case.iters, validate=False, **case.overrides)
    assert cfg.default_scope == case.toolbox, (cfg.default_scope, case.toolbox)
    return cfg


def test_one_mim_case_per_toolbox_and_model_type():
    assert len(CASES) == 24 and set(MIM_CASES) | set(RUNNER_CASES) == set(CASES)
    kinds = {(case.toolbox, model_type(name)) for name, case in CASES.items()}
    mim = sorted((CASES[name].toolbox, model_type(name)) for name in MIM_CASES)
    assert mim == sorted(kinds), mim
    # spread over the families
    assert {name.split('-')[0] for name in MIM_CASES} == {'pslt', 'fcvit', 'bvit', 'dense'}


@pytest.mark.parametrize('name', MIM_CASES)
def test_mim_train_then_test(name, tmp_path_factory, tmp_path):
    case = CASES[name]
    metrics = mim_train_then_test(mini_cfg(name, tmp_path_factory), case.toolbox, tmp_path)
    check_metrics(metrics, case.metrics)


@pytest.mark.parametrize('name', RUNNER_CASES)
def test_runner_train_then_test(name, tmp_path_factory, tmp_path):
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    case = CASES[name]
    scope, loggers = DefaultScope.get_current_instance(), set(MMLogger._instance_dict)
    run = run_in_process(mini_cfg(name, tmp_path_factory), str(tmp_path / 'work'), name)
    # the run left the process's current scope and loggers as they were
    assert DefaultScope.get_current_instance() is scope
    assert set(MMLogger._instance_dict) == loggers
    assert run.iters > 0 and run.losses, 'no training iteration ran'
    assert all(math.isfinite(v) for v in run.losses), run.losses
    check_metrics(run.metrics, case.metrics)
