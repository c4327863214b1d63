"""Multi-process runs of the tools: on machines without CUDA the tools start a gloo process group
themselves (mmengine 0.10.7's ``init_dist`` calls ``torch.cuda.set_device`` whatever the backend;
its Runner skips ``init_dist`` when a group exists), wrap the model in
``visattn_mm.CPUDistributedDataParallel`` and refuse SyncBN (torch's needs CUDA). With CUDA,
mmengine's Runner does it all (nccl by default).
"""
import datetime
import logging
import os
import subprocess
from typing import List

from mmengine.config import Config, ConfigDict

from .config import CPU_MODULE, LaunchError, _log, add_custom_import

LAUNCHERS = ('none', 'pytorch', 'slurm')
_SYNC_BN = {'SyncBN', 'MMSyncBN', 'SyncBatchNorm'}
_DDP = {'MMDistributedDataParallel', 'mmengine.MMDistributedDataParallel'}


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


def _with_process_group(launcher: str, cfg: Config, run):
    started = setup_distributed(cfg, launcher)
    try:
        return run()
    finally:
        if started:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
