"""Train and test a config with its toolbox's Runner: the library behind ``tools/train.py``,
``tools/test.py``, ``tools/dist_train.sh`` and ``tools/dist_test.sh``.

The toolbox comes from the config's ``default_scope`` (``'mmdet'``, ``'mmseg'`` or
``'mmpretrain'``); all three run mmengine's ``Runner`` (or the config's ``runner_type`` from the
toolbox's ``RUNNERS``). On top of what the toolboxes' own ``tools/train.py`` do, this module

- starts the process group itself on machines without CUDA (``--launcher pytorch`` or
  ``slurm``): gloo, from the environment ``torch.distributed.run`` (or slurm) sets. mmengine
  0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` whatever the backend; its Runner skips
  ``init_dist`` when a process group exists. The model is then wrapped by
  ``visattn_mm.CPUDistributedDataParallel`` (mmengine passes GPU ``device_ids`` to DDP), and a
  config with SyncBN is refused with the ``--cfg-options`` that replaces it (torch's
  SyncBatchNorm needs CUDA);
- runs mixed precision on the CPU as bfloat16 autocast (``visattn_mm.CPUAmpOptimWrapper``),
  since mmengine's ``AmpOptimWrapper`` asserts a GPU;
- checks a checkpoint it is about to resume from or test (whole, every CRC) and stops with a
  message naming the file when it is truncated or corrupt.

Python use: ``main_train(['CONFIG', '--work-dir', 'W'])`` is ``python tools/train.py CONFIG
--work-dir W``; :func:`load_config`, :func:`prepare_train_config` etc. (from
:mod:`visattn_mm.apis.config` and :mod:`visattn_mm.apis.distributed`) are the steps.
"""

import argparse
import importlib
import os
import sys
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

from visattn_mm.utils.checkpoint import CorruptCheckpointError

from .config import (CPU_AMP, CPU_MODULE, TOOLBOXES, LaunchError, _log, add_custom_import,
                     adapt_to_cpu, check_checkpoint, checkpoint_to_load, enable_amp,
                     load_config, on_cpu, prepare_test_config, prepare_train_config,
                     set_resume, toolbox_of)
from .distributed import LAUNCHERS, _with_process_group, find_sync_bn, setup_distributed

__all__ = ['CPU_AMP', 'CPU_MODULE', 'LAUNCHERS', 'TOOLBOXES', 'LaunchError', 'add_custom_import',
           'adapt_to_cpu', 'build_runner', 'check_checkpoint', 'checkpoint_to_load',
           'enable_amp', 'find_sync_bn', 'load_config', 'main_test', 'main_train', 'on_cpu',
           'prepare_test_config', 'prepare_train_config', 'set_resume', 'setup_distributed',
           'test', 'test_parser', 'toolbox_of', 'train', 'train_parser']


def build_runner(cfg: Config):
    """The Runner of ``cfg``: mmengine's ``Runner.from_cfg``, or with ``runner_type`` that
    runner from the toolbox's ``RUNNERS``.

    Args:
        cfg (Config): the prepared config.

    Returns:
        mmengine.runner.Runner: the runner.
    """
    if 'runner_type' in cfg:
        registry = importlib.import_module(f'{toolbox_of(cfg)}.registry')
        return registry.RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)


# --------------------------------------------------------------------------------------------
# command lines
# --------------------------------------------------------------------------------------------

def _common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: the config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config settings, e.g. model.backbone.arch=tiny '
                        'train_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='how the processes were started (pytorch: torch.distributed.run, '
                        'as tools/dist_*.sh do). Default: none (one process)')
    # torch.distributed.launch passes --local-rank; torch.distributed.run sets LOCAL_RANK
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def train_parser() -> argparse.ArgumentParser:
    """The options of ``tools/train.py``."""
    parser = argparse.ArgumentParser(
        prog='tools/train.py', description='Train a detector, segmentor or classifier (mmdet, '
        'mmseg or mmpretrain, from the config\'s default_scope).')
    parser.add_argument('config', help='the config file')
    _common_args(parser)
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper; bfloat16 autocast on a CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate to the real batch size')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CHECKPOINT',
                        help='resume: alone, from the work dir\'s latest checkpoint; with a '
                        'path, from that checkpoint')
    return parser


def test_parser() -> argparse.ArgumentParser:
    """The options of ``tools/test.py``."""
    parser = argparse.ArgumentParser(
        prog='tools/test.py', description='Evaluate a checkpoint on the config\'s test set '
        '(mmdet, mmseg or mmpretrain, from the config\'s default_scope).')
    parser.add_argument('config', help='the config file')
    parser.add_argument('checkpoint', help='the checkpoint file')
    _common_args(parser)
    parser.add_argument('--out', metavar='FILE.pkl', help='also dump the predictions here')
    return parser


def _tune_cpu_allocator() -> None:
    if on_cpu():
        from .cpu import keep_freed_cpu_memory
        if keep_freed_cpu_memory():
            _log('CPU run: glibc malloc keeps freed memory for reuse (no fresh mmap per large '
                 'tensor); VISATTN_KEEP_CPU_MEMORY=0 keeps its defaults')


def train(args: argparse.Namespace):
    """Train as ``tools/train.py`` does.

    Args:
        args (argparse.Namespace): from :func:`train_parser`.

    Returns:
        mmengine.runner.Runner: the runner, after training.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    prepare_train_config(cfg, amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                         resume=args.resume)
    check_checkpoint(cfg)
    _tune_cpu_allocator()

    def run():
        runner = build_runner(cfg)
        runner.train()
        return runner
    return _with_process_group(args.launcher, cfg, run)


def test(args: argparse.Namespace) -> dict:
    """Evaluate as ``tools/test.py`` does.

    Args:
        args (argparse.Namespace): from :func:`test_parser`.

    Returns:
        dict: the metrics.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    prepare_test_config(cfg, args.checkpoint, args.out)
    check_checkpoint(cfg)
    _tune_cpu_allocator()
    return _with_process_group(args.launcher, cfg, lambda: build_runner(cfg).test())


def _main(parser: argparse.ArgumentParser, run, argv: Optional[Sequence[str]]):
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (LaunchError, CorruptCheckpointError) as err:
        print(f'{parser.prog}: error: {err}', file=sys.stderr)
        sys.exit(1)


def main_train(argv: Optional[Sequence[str]] = None):
    """``tools/train.py``: bad input ends with ``error: <message>`` and exit status 1."""
    return _main(train_parser(), train, argv)


def main_test(argv: Optional[Sequence[str]] = None):
    """``tools/test.py``: bad input ends with ``error: <message>`` and exit status 1."""
    return _main(test_parser(), test, argv)
