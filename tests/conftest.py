import os
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the shared test helpers (small_backbones.py, this file's functions) import as top-level
# modules from every folder of tests/, laid out like the package
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def pytest_configure(config):
    config.addinivalue_line('markers', 'e2e: end-to-end training/evaluation runs (slower)')


@pytest.fixture(scope='module')
def one_thread():
    """One torch thread for a test module: small ops gain nothing from threads, and on a shared
    2-core machine OpenMP threads waiting on each other made single forwards take seconds."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def golden_dir() -> str:
    """The folder of the authors' reference outputs (``VISATTN_GOLDEN_DIR``)."""
    path = os.environ.get('VISATTN_GOLDEN_DIR', osp.join(ROOT, '..', 'shared', 'golden'))
    if not osp.isdir(path):
        pytest.fail(f'golden folder {path} not found; set VISATTN_GOLDEN_DIR')
    return path


def build_in_scope(model_cfg: dict, scope: str = 'mmpretrain'):
    """Build a model config in a toolbox's scope, as its Runner does.

    Building without it depends on whatever scope an earlier test (a Runner,
    ``init_default_scope``) left current in the process.
    """
    from visattn_mm.apis.config import build_model_in_scope
    return build_model_in_scope(model_cfg, scope)


def build_config_model(config: str, **backbone):
    """The ``model`` of a config file, built in its default scope; ``backbone`` overrides."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    cfg.model.backbone.update(backbone)
    return build_in_scope(cfg.model, cfg.get('default_scope', 'mmengine'))


@pytest.fixture
def build_model():
    """``build_model(config_path)``: its ``model``, built as the toolbox's Runner builds it."""
    return build_config_model


def assert_memory_formats_agree(make, x, grad_rtol: float = 1e-3) -> None:
    """``make(channels_last=...)`` builds a backbone: the channels-last one (weights in NHWC)
    equals the NCHW one with the same weights, for an input in either format, returns contiguous
    maps, and gets the same gradients."""
    import torch
    torch.manual_seed(0)
    model, nchw = make(channels_last=True), make(channels_last=False)
    nchw.load_state_dict(model.state_dict())
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    model.eval(), nchw.eval()
    with torch.no_grad():
        ref = nchw(x)
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            for a, b in zip(ref, model(inp)):
                assert b.is_contiguous()
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    model.train(), nchw.train()
    for m in (model, nchw):
        sum(o.square().mean() for o in m(x)).backward()
    for (name, p), q in zip(model.named_parameters(), nchw.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=grad_rtol, atol=1e-6, msg=name)
