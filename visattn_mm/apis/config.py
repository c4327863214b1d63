"""Configs: reading one (one :func:`load_config` for the tools, visualisation, export and
tests), building its model in its toolbox's scope, and what ``tools/train.py`` and
``tools/test.py`` do to it: mixed precision on the device at hand, resuming, and the checkpoint
check before the Runner loads anything.
"""
import importlib
import importlib.util
import logging
import os
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from torch import nn

import visattn_mm  # noqa: F401  (Runner checkpoints load under torch's weights_only default)
from visattn_mm.utils.checkpoint import CorruptCheckpointError, check_checkpoint_file

# default_scope -> the distribution that provides it
TOOLBOXES = {'mmdet': 'mmdet', 'mmseg': 'mmsegmentation', 'mmpretrain': 'mmpretrain'}
CPU_MODULE = 'visattn_mm.apis.cpu'
CPU_AMP = 'CPUAmpOptimWrapper'
_AMP = {'AmpOptimWrapper', 'mmengine.AmpOptimWrapper'}
_PLAIN = {'OptimWrapper', 'mmengine.OptimWrapper'}


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


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None) -> Config:
    """Read a config, merge ``--cfg-options``, import its ``custom_imports`` and set the work
    dir: what the tools, visualisation and export all start from.

    Args:
        config (str | Config): the config file, or a loaded config.
        cfg_options (dict, optional): ``key.sub=value`` overrides (``--cfg-options``).
            Defaults to None.
        work_dir (str, optional): where logs and checkpoints go; without it the config's
            ``work_dir``, else ``./work_dirs/<config name>``. Defaults to None.

    Returns:
        Config: the config, its toolbox checked (:func:`toolbox_of`).

    Raises:
        LaunchError: the file does not exist, or its ``default_scope`` is missing, unknown or
            not installed.
    """
    if isinstance(config, Config):
        cfg, name = config, osp.splitext(osp.basename(config.filename or 'config'))[0]
    else:
        if not osp.isfile(config):
            raise LaunchError(f'config {config} does not exist')
        cfg, name = Config.fromfile(config), osp.splitext(osp.basename(config))[0]
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    imports = cfg.get('custom_imports')
    if imports:
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**imports)
    toolbox_of(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', name)
    return cfg


def build_model_in_scope(model_cfg: dict, scope: str) -> nn.Module:
    """Build ``model_cfg`` with the MODELS registry of the toolbox ``scope`` (``'mmpretrain'``,
    ``'mmdet'``, ``'mmseg'`` or ``'visattn_mm'``), as that toolbox's Runner does.

    Args:
        model_cfg (dict): the model config.
        scope (str): the default scope.

    Returns:
        nn.Module: the model.
    """
    registry = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return registry.build(model_cfg)


def build_model_from_config(config: Union[str, Config], checkpoint: Optional[str] = None,
                            device: str = 'cpu', backbone: Optional[dict] = None) -> nn.Module:
    """The config's ``model`` in eval mode, with a checkpoint's weights if one is given.

    Args:
        config (str | Config): the config file or config.
        checkpoint (str, optional): a checkpoint of the whole model (``state_dict`` with the
            model's keys, e.g. ``backbone.``), checked whole first and loaded strictly: a
            damaged file or one of another model is an error, never random weights. Defaults to
            None: random initialisation (the backbones' ``init_weights`` is not called, so no
            Pretrained file is needed).
        device (str): where the model goes. Defaults to ``'cpu'``.
        backbone (dict, optional): keys that replace the config's backbone settings (e.g. a
            small ``arch`` for tests). Defaults to None.

    Returns:
        nn.Module: the model, in eval mode.
    """
    cfg = load_config(config)
    model_cfg = cfg.model.copy()
    if backbone:
        model_cfg.backbone.update(backbone)
    model = build_model_in_scope(model_cfg, cfg.get('default_scope', 'mmpretrain'))
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(model)
    if checkpoint:
        from mmengine.runner import load_checkpoint

        from visattn_mm.utils.checkpoint import check_checkpoint_file
        check_checkpoint_file(checkpoint)
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()


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
