"""What the end-to-end tests share: generated mini sets, ``mim`` runs, and in-process Runner runs
that leave no mmengine state behind.

mmengine keeps process-wide instances by name: the default scope (``DefaultScope``, which the
registries build in), loggers (``MMLogger``, with a file handler in the work dir), message hubs
and visualizers, all named after the Runner's ``experiment_name``. A Runner registers its own and
makes them current; the latest created default scope is the one every later ``build`` resolves
in. :func:`run_in_process` gives each run a unique experiment name, builds the Runner in the
config's ``default_scope``, and on the way out closes the loggers' handlers and drops every
instance the run created, so the next case (or any later test in the process) sees the scope and
loggers it saw before.
"""
import contextlib
import copy
import itertools
import logging
import math
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Dict, Iterator, List, NamedTuple, Sequence

from cases import MINI_SETS
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MIM = osp.join(osp.dirname(sys.executable), 'mim')
_serial = itertools.count()


# --------------------------------------------------------------------------------------------
# mini sets
# --------------------------------------------------------------------------------------------

def mini_set(parent: str, name: str, **sizes) -> str:
    """The mini set ``name`` (a key of ``cases.MINI_SETS``) under ``parent``, generated on first
    use (seed 0); ``sizes`` replace the table's size arguments (a different size is another
    folder). Market-1501 also gets its annotation files."""
    from visattn_mm.testing import mini_datasets
    maker, kwargs = MINI_SETS[name]
    kwargs = dict(kwargs, **sizes)
    tag = '-'.join(f'{k}{v}' for k, v in sorted(kwargs.items()))
    root = osp.join(str(parent), f'{name}-{tag}')
    if not osp.isdir(root):
        getattr(mini_datasets, maker)(root + '.part', seed=0, **kwargs)
        if name == 'market1501':
            from visattn_mm.datasets.market1501 import convert_market1501
            convert_market1501(root + '.part')
        os.replace(root + '.part', root)
    return root


def session_mini_set(tmp_path_factory, name: str, **sizes) -> str:
    """:func:`mini_set` in the pytest session's temporary folder: generated once per session,
    shared by the tests that ask for the same set and sizes."""
    return mini_set(str(tmp_path_factory.getbasetemp() / 'e2e-mini'), name, **sizes)


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------

def check_metrics(metrics: Dict[str, float], keys: Sequence[str]) -> None:
    """Every key is reported, finite and >= 0 (all the suite's metrics are)."""
    for key in keys:
        assert key in metrics, f'{key} missing from {metrics}'
        value = float(metrics[key])
        assert math.isfinite(value) and value >= 0, (key, value)


def final_test_metrics(log: str) -> Dict[str, float]:
    """``key: value`` pairs of the last ``(test)`` line of an mmengine log."""
    lines = [line for line in log.splitlines() if '(test)' in line]
    assert lines, f'no test results in the log:\n{log[-3000:]}'
    return {k: float(v) for k, v in re.findall(r'([\w/]+): (-?[\d.]+(?:e-?\d+)?)', lines[-1])}


# --------------------------------------------------------------------------------------------
# mim, in its own processes
# --------------------------------------------------------------------------------------------

def run_mim(*args: str, cwd: str) -> str:
    """``mim ARGS`` in ``cwd`` (one OpenMP thread, as the in-process runs); fails the test with
    the log's tail unless it exits with 0."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run([MIM, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1200, stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'mim {" ".join(args)} failed:\n{log[-6000:]}'
    return log


def mim_train_then_test(cfg: Config, toolbox: str, tmp_path) -> Dict[str, float]:
    """``mim train`` the config, then ``mim test`` its last checkpoint; the test metrics.
    Every training iteration's loss is logged and must be finite."""
    cfg = copy.deepcopy(cfg)
    cfg.default_hooks.logger.interval = 1
    cfg_path = str(tmp_path / 'config.py')
    cfg.dump(cfg_path)
    work_dir = str(tmp_path / 'work')
    log = run_mim('train', toolbox, cfg_path, '--work-dir', work_dir, cwd=str(tmp_path))
    losses = [float(v) for v in re.findall(r'\(train\).*?\sloss: (-?[\d.]+(?:e-?\d+)?|nan|inf)',
                                            log)]
    assert losses and all(math.isfinite(v) for v in losses), \
        f'no finite training loss in the log:\n{log[-3000:]}'
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    assert osp.isfile(checkpoint), checkpoint
    log = run_mim('test', toolbox, cfg_path, '--checkpoint', checkpoint, '--work-dir',
                  str(tmp_path / 'test'), cwd=str(tmp_path))
    return final_test_metrics(log)


# --------------------------------------------------------------------------------------------
# in process
# --------------------------------------------------------------------------------------------

def _manager_classes() -> List[type]:
    from mmengine.utils import ManagerMixin
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@contextlib.contextmanager
def isolated_mmengine_state() -> Iterator[None]:
    """On exit, drop the mmengine global instances (default scopes, loggers, message hubs,
    visualizers, ...) created inside, closing the loggers' handlers (their log files)."""
    before = {cls: set(cls._instance_dict) for cls in _manager_classes()}
    try:
        yield
    finally:
        for cls in _manager_classes():
            for name in [n for n in cls._instance_dict if n not in before.get(cls, ())]:
                instance = cls._instance_dict.pop(name)
                if isinstance(instance, logging.Logger):
                    for handler in list(instance.handlers):
                        handler.close()
                        instance.removeHandler(handler)


class Run(NamedTuple):
    metrics: Dict[str, float]  # what runner.test() returned
    losses: List[float]  # train/loss of every training iteration (empty without training)
    iters: int  # training iterations run


def set_options(cfg: Config, options: Dict[str, object]) -> None:
    """Set ``{'model.backbone.arch': ..., ...}`` in ``cfg``: each value replaces what is there
    (``Config.merge_from_dict`` would merge a dict into a dict and refuses one over a str)."""
    for key, value in options.items():
        *path, last = key.split('.')
        node = cfg
        for part in path:
            node = node[part]
        node[last] = copy.deepcopy(value)


def run_in_process(cfg: Config, work_dir: str, name: str, train: bool = True) -> Run:
    """One Runner of ``cfg`` in this process: train (or, with ``train=False``, only initialise
    the weights as ``runner.train()`` would), then test with the config's evaluator.

    The test scores the weights in memory, so no checkpoint is written (saving one and testing
    from it is what the ``mim`` cases check, one per toolbox and model type).

    Runs with one torch thread: the models are small, and on a shared 2-core machine two
    OpenMP threads waiting on each other made the same run several times slower.
    """
    import torch
    cfg = copy.deepcopy(cfg)
    scope = cfg.get('default_scope')
    assert scope in ('mmdet', 'mmseg', 'mmpretrain'), f'default_scope {scope!r}'
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    assert 'visattn_mm' in imports, f'custom_imports {imports} lacks visattn_mm'
    cfg.work_dir = work_dir
    cfg.experiment_name = f'{name}-{next(_serial)}'  # the Runner appends a timestamp
    cfg.default_hooks.checkpoint = None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with isolated_mmengine_state():
            return _train_and_test(cfg, scope, train)
    finally:
        torch.set_num_threads(threads)


def _train_and_test(cfg: Config, scope: str, train: bool) -> Run:
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    assert runner.default_scope is not None and runner.default_scope.scope_name == scope
    losses: List[float] = []
    iters = 0
    if train:
        runner.train()
        losses = [float(v) for v in runner.message_hub.get_scalar('train/loss').data[0]]
        iters = runner.iter
    else:
        runner.model.init_weights()
    metrics = runner.test()
    return Run({k: float(v) for k, v in metrics.items()}, losses, iters)
