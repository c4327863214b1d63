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
--work-dir W``; :func:`load_config`, :func:`prepare_train_config` etc. are the steps.
"""
import argparse
import datetime
import importlib
import importlib.util
import logging
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional, Sequence

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

import visattn_mm  # noqa: F401  (Runner checkpoints load under torch's weights_only default)
from visattn_mm.utils.checkpoint import CorruptCheckpointError, check_checkpoint_file

# default_scope -> the distribution that provides it
TOOLBOXES = {'mmdet': 'mmdet', 'mmseg': 'mmsegmentation', 'mmpretrain': 'mmpretrain'}
LAUNCHERS = ('none', 'pytorch', 'slurm')
CPU_MODULE = 'visattn_mm.apis.cpu'
CPU_AMP = 'CPUAmpOptimWrapper'
_SYNC_BN = {'SyncBN', 'MMSyncBN', 'SyncBatchNorm'}
_AMP = {'AmpOptimWrapper', 'mmengine.AmpOptimWrapper'}
_PLAIN = {'OptimWrapper', 'mmengine.OptimWrapper'}
_DDP = {'MMDistributedDataParallel', 'mmengine.MMDistributedDataParallel'}


class LaunchError(ValueError):
    """Bad input to a tool (config, options, environment); the message says what to change."""


def _log(msg: str, level: int = logging.INFO) -> None:
    """Log once per job (rank 0 of a launcher's processes)."""
    if os.environ.get('RANK', '0') == '0':
        print_log(msg, logger='current', level=level)


def on_cpu() -> bool:
    """Whether the Runner will put the model on the CPU (no CUDA, NPU, MLU, MUSA or MPS)."""
    from mmengine.device import get_device
    return get_device() == 'cpu'


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------

def toolbox_of(cfg: Config) -> str:
    """The toolbox a config runs in: its ``default_scope``.

    Args:
        cfg (Config): the config.

    Returns:
        str: ``'mmdet'``, ``'mmseg'`` or ``'mmpretrain'``.

    Raises:
        LaunchError: no or an unknown ``default_scope``, or that toolbox is not installed.
    """
    scope = cfg.get('default_scope')
    accepted = ', '.join(repr(s) for s in TOOLBOXES)
    if scope is None:
        raise LaunchError(f'the config has no default_scope: set it to one of {accepted} '
                          '(the toolbox whose Runner, datasets and models it uses)')
    if scope not in TOOLBOXES:
        raise LaunchError(f'unknown default_scope {scope!r}: these tools run {accepted}')
    if importlib.util.find_spec(scope) is None:
        raise LaunchError(f'default_scope {scope!r} needs {TOOLBOXES[scope]}, which is not '
                          'installed (bash tools/setup_env.sh installs the whole stack)')
    return scope


def load_config(config: str, cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Read a config, merge ``--cfg-options`` and set the work dir.

    Args:
        config (str): the config file.
        cfg_options (dict, optional): ``key.sub=value`` overrides (``--cfg-options``).
            Defaults to None.
        work_dir (str, optional): where logs and checkpoints go; without it the config's
            ``work_dir``, else ``./work_dirs/<config name>``. Defaults to None.

    Returns:
        Config: the config, its toolbox checked (:func:`toolbox_of`).
    """
    if not osp.isfile(config):
        raise LaunchError(f'config {config} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    toolbox_of(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])
    return cfg


def add_custom_import(cfg: Config, module: str) -> None:
    """Import ``module`` now and list it in ``cfg.custom_imports`` (so the config the Runner
    dumps into the work dir builds too).

    Args:
        cfg (Config): the config (changed in place).
        module (str): a module name.
    """
    importlib.import_module(module)
    custom = cfg.get('custom_imports') or ConfigDict(imports=[], allow_failed_imports=False)
    imports = custom.get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    if module not in imports:
        imports.append(module)
    custom.imports = imports
    cfg.custom_imports = custom


def enable_amp(cfg: Config) -> None:
    """``--amp``: an ``OptimWrapper`` becomes an ``AmpOptimWrapper`` with dynamic loss scaling
    (on the CPU, :func:`adapt_to_cpu` then makes it bfloat16 autocast).

    Args:
        cfg (Config): the config (changed in place).

    Raises:
        LaunchError: no ``optim_wrapper``, or one of another type (set precision there).
    """
    optim = cfg.get('optim_wrapper')
    if optim is None:
        raise LaunchError('--amp needs an optim_wrapper in the config')
    kind = optim.get('type', 'OptimWrapper')
    if kind in _AMP or kind == f'visattn_mm.{CPU_AMP}':
        _log('--amp: mixed precision is already on in the config', logging.WARNING)
    elif kind in _PLAIN:
        optim.type = 'AmpOptimWrapper'
        optim.setdefault('loss_scale', 'dynamic')
    else:
        raise LaunchError(f'--amp turns an OptimWrapper into an AmpOptimWrapper, but the '
                          f'config has optim_wrapper type {kind!r}: set mixed precision there')



def adapt_to_cpu(cfg: Config) -> None:
    """On a machine without an accelerator, run an ``AmpOptimWrapper`` (from the config or
    ``--amp``) as ``visattn_mm.CPUAmpOptimWrapper``: bfloat16 autocast, no loss scaling.
    mmengine's ``AmpOptimWrapper`` asserts a GPU. Does nothing where there is one.

    Args:
        cfg (Config): the config (changed in place).
    """
    optim = cfg.get('optim_wrapper')
    if not on_cpu() or optim is None or optim.get('type') not in _AMP:
        return
    dtype = optim.pop('dtype', None)
    optim.pop('loss_scale', None)
    optim.type = f'visattn_mm.{CPU_AMP}'
    optim.dtype = 'bfloat16'
    add_custom_import(cfg, CPU_MODULE)
    _log('no GPU: mixed precision runs as bfloat16 autocast on the CPU '
         f'(visattn_mm.{CPU_AMP}, no loss scaling)'
         + (f'; the config asked for {dtype}' if dtype not in (None, 'bfloat16') else ''),
         logging.WARNING)


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """``--resume``: ``'auto'`` resumes from the work dir's latest checkpoint, a path from
    that file; ``None`` leaves the config as it is.

    Args:
        cfg (Config): the config (changed in place).
        resume (str, optional): ``'auto'``, a checkpoint path or None.
    """
    if resume is None:
        return
    cfg.resume = True
    cfg.load_from = None if resume == 'auto' else resume


def checkpoint_to_load(cfg: Config) -> Optional[str]:
    """The checkpoint the Runner will load: ``load_from``, or with ``resume`` and no
    ``load_from`` the one the work dir's ``last_checkpoint`` names (as mmengine finds it).

    Args:
        cfg (Config): the config, work dir set.

    Returns:
        str | None: the path, or None when nothing will be loaded.

    Raises:
        LaunchError: ``last_checkpoint`` is empty.
    """
    if cfg.get('load_from'):
        return cfg.load_from
    if cfg.get('resume'):
        last = osp.join(cfg.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                path = f.read().strip()
            if not path:  # a run killed while it named its checkpoint
                raise LaunchError(f'{last} is empty, so there is no checkpoint to resume from: '
                                  'give one with --resume PATH')
            return path
    return None


def check_checkpoint(cfg: Config) -> Optional[str]:
    """Check the checkpoint the Runner will load (:func:`checkpoint_to_load`) before it does.

    Remote paths (``s3://``, ``https://``) are left to mmengine.

    Args:
        cfg (Config): the config, work dir set.

    Returns:
        str | None: the checked path.

    Raises:
        LaunchError: the file does not exist.
        CorruptCheckpointError: it is truncated or corrupt; the message names it.
    """
    path = checkpoint_to_load(cfg)
    if path is None or '://' in path:
        return path
    auto = cfg.get('resume') and not cfg.get('load_from')
    where = f' (named by {osp.join(cfg.work_dir, "last_checkpoint")})' if auto else ''
    if cfg.get('resume'):
        hint = ('Resume from an earlier checkpoint with --resume PATH, or delete this one and '
                'its last_checkpoint entry to start again.')
    else:
        hint = 'Give another checkpoint.'
    try:
        check_checkpoint_file(path, hint=hint)
    except FileNotFoundError:
        raise LaunchError(f'checkpoint {path}{where} does not exist') from None
    except CorruptCheckpointError as err:
        raise CorruptCheckpointError(str(err).replace(path, path + where, 1)) from None
    return path


def prepare_train_config(cfg: Config, amp: bool = False, auto_scale_lr: bool = False,
                         resume: Optional[str] = None) -> Config:
    """Apply ``--amp``, ``--auto-scale-lr`` and ``--resume`` and adapt to the device.

    Args:
        cfg (Config): from :func:`load_config` (changed in place).
        amp (bool): mixed precision. Defaults to False.
        auto_scale_lr (bool): scale the learning rate by the real batch size against the
            config's ``auto_scale_lr.base_batch_size``. Defaults to False.
        resume (str, optional): ``'auto'`` or a checkpoint. Defaults to None.

    Returns:
        Config: ``cfg``.
    """
    if amp:
        enable_amp(cfg)
    adapt_to_cpu(cfg)
    if auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            raise LaunchError('--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=N) '
                              'in the config (the batch size its learning rate is for)')
        scale.enable = True
    set_resume(cfg, resume)
    return cfg


def prepare_test_config(cfg: Config, checkpoint: str, out: Optional[str] = None) -> Config:
    """Load ``checkpoint`` for testing and, with ``out``, dump the predictions there.

    Args:
        cfg (Config): from :func:`load_config` (changed in place).
        checkpoint (str): the checkpoint to test.
        out (str, optional): a ``.pkl`` file for the predictions (mmdet's ``DumpDetResults``
            format for detection, mmengine's ``DumpResults`` otherwise). Defaults to None.

    Returns:
        Config: ``cfg``.
    """
    cfg.load_from = checkpoint
    cfg.resume = False
    if out is not None:
        if not out.endswith(('.pkl', '.pickle')):
            raise LaunchError(f'--out must be a .pkl file, got {out}')
        kind = 'DumpDetResults' if toolbox_of(cfg) == 'mmdet' else 'DumpResults'
        dump = ConfigDict(type=kind, out_file_path=out)
        evaluator = cfg.get('test_evaluator')
        if evaluator is None:
            cfg.test_evaluator = [dump]
        elif isinstance(evaluator, (list, tuple)):
            cfg.test_evaluator = [*evaluator, dump]
        else:
            cfg.test_evaluator = [evaluator, dump]
    return cfg


# --------------------------------------------------------------------------------------------
# distributed
# --------------------------------------------------------------------------------------------

def find_sync_bn(node, path: str = 'model') -> List[str]:
    """Paths (``--cfg-options`` keys) of the SyncBN norm settings in a model config.

    Args:
        node: a config node (``cfg.model``).
        path (str): its key. Defaults to 'model'.

    Returns:
        list[str]: e.g. ``['model.backbone.norm_cfg']``.
    """
    found = []
    if isinstance(node, dict):
        kind = node.get('type')
        if isinstance(kind, str) and kind.split('.')[-1] in _SYNC_BN:
            found.append(path)
        for key, value in node.items():
            found += find_sync_bn(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            found += find_sync_bn(value, f'{path}.{i}')
    return found


def _slurm_to_torch_env() -> None:
    """Set the variables ``init_process_group(init_method='env://')`` reads from slurm's."""
    env = os.environ
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS') if k not in env]
    if missing:
        raise LaunchError(f'--launcher slurm: {", ".join(missing)} not set; start the job with '
                          'srun')
    env.setdefault('RANK', env['SLURM_PROCID'])
    env.setdefault('WORLD_SIZE', env['SLURM_NTASKS'])
    env.setdefault('LOCAL_RANK', env.get('SLURM_LOCALID', '0'))
    env.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in env:
        nodes = env.get('SLURM_NODELIST') or env.get('SLURM_JOB_NODELIST')
        if not nodes:
            raise LaunchError('--launcher slurm: neither MASTER_ADDR nor SLURM_NODELIST is set')
        env['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1').strip()


def setup_distributed(cfg: Config, launcher: str) -> bool:
    """Prepare ``cfg`` for ``launcher``; on a machine without CUDA, start the gloo group.

    With CUDA, mmengine's Runner starts the group (``env_cfg.dist_cfg``, nccl by default).
    Without, this function sets ``env_cfg.dist_cfg.backend='gloo'``, wraps the model in
    ``visattn_mm.CPUDistributedDataParallel``, refuses SyncBN (naming the keys to override) and
    calls ``torch.distributed.init_process_group('gloo')`` from ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT`` (set by ``torch.distributed.run``; for slurm taken from
    ``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_NODELIST``).

    Args:
        cfg (Config): the config (changed in place: ``launcher`` and the above).
        launcher (str): ``'none'``, ``'pytorch'`` or ``'slurm'``.

    Returns:
        bool: whether this call started the process group (the caller ends it).

    Raises:
        LaunchError: an unknown launcher, SyncBN in a CPU run, or the launcher's environment
            variables are missing.
    """
    if launcher not in LAUNCHERS:
        raise LaunchError(f'unknown launcher {launcher!r}: use one of {", ".join(LAUNCHERS)}')
    cfg.launcher = launcher
    if launcher == 'none':
        return False
    import torch
    import torch.distributed as dist
    if torch.cuda.is_available():
        return False
    sync_bn = find_sync_bn(cfg.get('model', {}))
    if sync_bn or cfg.get('sync_bn'):
        keys = sync_bn or ['sync_bn']
        fix = ' '.join(f'{k}.type=BN' for k in sync_bn) if sync_bn else 'sync_bn=None'
        raise LaunchError(
            f'SyncBN needs CUDA (torch\'s SyncBatchNorm refuses CPU tensors), and this '
            f'multi-process CPU run has it at {", ".join(keys)}. Replace it, e.g. '
            f'--cfg-options {fix} (or GN: type=GN num_groups=...)')
    env_cfg = cfg.get('env_cfg') or ConfigDict()
    dist_cfg = env_cfg.get('dist_cfg') or ConfigDict()
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        _log(f'no CUDA: distributed backend {dist_cfg.get("backend", "nccl")} -> gloo')
    dist_cfg.backend = 'gloo'
    env_cfg.dist_cfg = dist_cfg
    cfg.env_cfg = env_cfg

    wrapper = cfg.get('model_wrapper_cfg')
    cpu_ddp = 'visattn_mm.CPUDistributedDataParallel'
    if wrapper is None:
        cfg.model_wrapper_cfg = ConfigDict(
            type=cpu_ddp, broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    elif wrapper.get('type', 'MMDistributedDataParallel') in _DDP:
        wrapper.type = cpu_ddp
    else:
        _log(f'model_wrapper_cfg type {wrapper.type!r} kept: it must accept a CPU model',
             logging.WARNING)
    add_custom_import(cfg, CPU_MODULE)

    if dist.is_available() and dist.is_initialized():
        return False
    if launcher == 'slurm':
        _slurm_to_torch_env()
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise LaunchError(f'--launcher {launcher}: {", ".join(missing)} not set; start the '
                          'processes with tools/dist_train.sh / tools/dist_test.sh or '
                          '`python -m torch.distributed.run --nproc_per_node=N ...`')
    kwargs = {}
    if dist_cfg.get('timeout') is not None:
        kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg.timeout)
    dist.init_process_group('gloo', init_method='env://', rank=int(os.environ['RANK']),
                            world_size=int(os.environ['WORLD_SIZE']), **kwargs)
    return True


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


def _with_process_group(launcher: str, cfg: Config, run):
    started = setup_distributed(cfg, launcher)
    try:
        return run()
    finally:
        if started:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()


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
