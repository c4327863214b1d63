"""What every backbone of this package shares: out_indices, freezing, and checked Pretrained.

* ``out_indices``: stage indices 0..3 (strides 4/8/16/32), negatives count from the end,
  normalised once into a sorted tuple; bad values raise ``ValueError`` naming the range.
* ``frozen_stages`` (mmdet ResNet's convention): -1 none, 0 the stem, i the stem and the first i
  stages; frozen modules get no gradients and stay in eval mode, re-applied by ``train()``
  together with ``norm_eval``. A family says which modules that is in ``_frozen_modules``.
* Pretrained weights must fit (below).

mmengine's ``PretrainedInit`` loads with ``strict=False`` and only logs what did not match, so a
checkpoint of another family, another arch or an unconverted authors' file would leave a randomly
initialised backbone behind a warning. Backbones of this package load their ``Pretrained``
``init_cfg`` through :meth:`BaseBackbone.init_weights` instead: every tensor the backbone has must be
in the checkpoint with the same shape (except ``optional_pretrained`` ones, e.g. output norms that
a classification checkpoint cannot have), or ``init_weights`` raises ``ValueError`` saying what
does not fit and what to do.
"""
import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from visattn_mm.converters import detect_family, unwrap_state_dict
from .. import accel


def maybe_checkpoint(with_cp: bool, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, through (non-reentrant) gradient checkpointing when ``with_cp``
    and the first argument needs a gradient: the block is recomputed in backward instead of
    keeping its activations. Every family's ``with_cp`` goes through here.

    Args:
        with_cp (bool): the backbone's ``with_cp``.
        fn (callable): the block (or a function of it); must give the same result when rerun
            with the same arguments.
        *args: its inputs, the first a tensor.
        **kwargs: keyword inputs.
    """
    if with_cp and args[0].requires_grad:
        return cp.checkpoint(fn, *args, use_reentrant=False, **kwargs)
    return fn(*args, **kwargs)


def _split_init_cfg(init_cfg) -> Tuple[Optional[dict], list]:
    """(the Pretrained entry or None, the other entries)."""
    cfgs = [] if init_cfg is None else [init_cfg] if isinstance(init_cfg, dict) else list(init_cfg)
    pretrained = [c for c in cfgs if c.get('type') == 'Pretrained']
    return (pretrained[-1] if pretrained else None), [c for c in cfgs if c not in pretrained]


def _examples(keys: List[str], n: int = 3) -> str:
    return ', '.join(keys[:n]) + (', ...' if len(keys) > n else '')


def load_fitting_state_dict(module: torch.nn.Module, cfg: dict, optional: str = r'$^',
                            resizable: str = r'$^') -> Dict[str, torch.Tensor]:
    """Load ``cfg['checkpoint']`` (keys under ``cfg['prefix']``) and check that it fits.

    Args:
        module (nn.Module): the backbone.
        cfg (dict): a ``dict(type='Pretrained', checkpoint=..., prefix=None,
            map_location='cpu')``.
        optional (str): regex of the module's keys the checkpoint may lack. Defaults to
            ``r'$^'`` (none).
        resizable (str): regex of keys whose shape may differ (the module's load pre-hook
            resizes them, e.g. position tables). Defaults to ``r'$^'`` (none).

    Returns:
        dict[str, Tensor]: the checkpoint's tensors for the module's keys.

    Raises:
        ValueError: no tensor under the prefix, or tensors missing or of other shapes.
    """
    path, prefix = cfg['checkpoint'], cfg.get('prefix') or ''
    name = type(module).__name__
    raw = unwrap_state_dict(_load_checkpoint(path, map_location=cfg.get('map_location', 'cpu')))
    raw = {re.sub(r'^module\.', '', k): v for k, v in raw.items()}
    state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}

    def hint() -> str:  # only on the error paths: it matches every key against every family
        families = detect_family(raw)
        if families:
            return (f"It looks like an unconverted authors' {families[0]!r} checkpoint: convert "
                    f'it with `python tools/convert_official.py {families[0]} SRC DST`.')
        return 'Is it a checkpoint of another family or arch, or is the prefix wrong?'

    if not state:
        prefixes = sorted({k.split('.')[0] + '.' for k in raw})
        raise ValueError(f'{path} has no tensors under the prefix {prefix!r} (its top-level '
                         f'prefixes: {_examples(prefixes, 6)}), so it cannot initialise {name}. '
                         + hint())
    own = module.state_dict()
    # BatchNorm's step counter is not a weight: checkpoints without it load (torch keeps 0)
    missing = [k for k in own if k not in state and not re.match(optional, k)
               and not k.endswith('.num_batches_tracked')]
    mismatched = [f'{k}: checkpoint {tuple(state[k].shape)} vs {name} {tuple(v.shape)}'
                  for k, v in own.items()
                  if k in state and state[k].shape != v.shape and not re.match(resizable, k)]
    if missing or mismatched:
        arch = getattr(module, 'arch_settings', None)
        raise ValueError(
            f'{path} (prefix {prefix!r}) does not fit {name}'
            + (f' {arch}' if arch else '') + ': '
            f'{len(missing)} of its {len(own)} tensors are missing ({_examples(missing)}) and '
            f'{len(mismatched)} have other shapes ({_examples(mismatched, 2)}). ' + hint())
    unused = [k for k in state if k not in own]
    if unused:
        print_log(f'{name}: {len(unused)} checkpoint tensors unused ({_examples(unused)})',
                  logger='current')
    return {k: state[k] for k in own if k in state}


class BaseBackbone(BaseModule):
    """Base of the package's backbones (see the module doc).

    Subclasses call ``self._parse_out_indices`` and ``self._check_frozen_stages`` in
    ``__init__``, ``self._freeze_stages()`` at its end, and define ``_frozen_modules``;
    ``optional_pretrained`` is a regex of the keys a Pretrained checkpoint may lack.
    """
    num_stages: int = 4
    # what an out_indices / frozen_stages index means, for error messages
    stage_desc: str = '0..3 = strides 4, 8, 16, 32'
    optional_pretrained: str = r'$^'
    resizable_pretrained: str = r'$^'
    channels_last: bool = False  # see _use_channels_last
    # named archs (aliases share one dict) and the keys a dict arch must have
    arch_zoo: Dict[str, dict] = {}
    essential_keys: frozenset = frozenset()
    optional_keys: Dict[str, Any] = {}  # name -> default

    # ---------------------------------------------------------------- arguments
    def _parse_arch(self, arch: Union[str, dict]) -> dict:
        """The settings of a named arch, or a checked dict arch, over ``optional_keys``'
        defaults; a family checks the values themselves."""
        name = type(self).__name__
        if isinstance(arch, str):
            key = arch.lower()
            if key not in self.arch_zoo:
                raise ValueError(f'unknown {name} arch {arch!r}; choose one of '
                                 f'{sorted(self.arch_zoo)} or pass a dict with the keys '
                                 f'{sorted(self.essential_keys)}')
            return {**self.optional_keys, **self.arch_zoo[key]}
        if not isinstance(arch, dict):
            raise TypeError(f'arch must be a str or a dict, got {type(arch).__name__}')
        missing = set(self.essential_keys) - set(arch)
        unknown = set(arch) - set(self.essential_keys) - set(self.optional_keys)
        if missing or unknown:
            raise ValueError(f'a dict arch for {name}: missing keys {sorted(missing)}, unknown '
                             f'keys {sorted(unknown)}; required {sorted(self.essential_keys)}, '
                             f'optional {sorted(self.optional_keys)}')
        return {**self.optional_keys, **arch}

    @staticmethod
    def drop_path_schedule(drop_path_rate: float, num_blocks: int) -> List[float]:
        """Stochastic depth rising linearly from 0 to ``drop_path_rate`` over the blocks.

        Args:
            drop_path_rate (float): the rate the schedule rises to (the last block's when there
                are two or more).
            num_blocks (int): number of blocks.

        Returns:
            list[float]: one rate per block.
        """
        return torch.linspace(0, drop_path_rate, num_blocks).tolist()

    def _use_channels_last(self, channels_last: Optional[bool]) -> None:
        """Keep the convolution weights channels-last (NHWC); the forward turns its input the
        same way with :meth:`_channels_last_input` and returns contiguous (NCHW) maps.
        In-place initialisation and checkpoint loading keep the layout; oneDNN's convolutions
        then run without reordering their operands on every call.

        ``None`` chooses per device, whenever the module is moved (``.to``, ``.cuda``,
        ``.cpu``): channels-last on the CPU, where it was measured faster, NCHW elsewhere (on
        CUDA, GroupNorm copies a channels-last map to NCHW; docs/speed.md)."""
        self.channels_last_cfg = channels_last
        self._set_memory_format(True if channels_last is None else channels_last)

    def _set_memory_format(self, channels_last: bool) -> None:
        self.channels_last = channels_last
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        for param in self.parameters():
            if param.dim() == 4 and not param.is_contiguous(memory_format=fmt):
                param.data = param.data.contiguous(memory_format=fmt)
        self._memory_format_changed(channels_last)

    def _memory_format_changed(self, channels_last: bool) -> None:
        """What a family keeps in the chosen layout besides its weights."""

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        param = next(self.parameters(), None)
        if getattr(self, 'channels_last_cfg', False) is None and param is not None:
            channels_last = accel.channels_last_on(param.device)
            if channels_last != self.channels_last:
                self._set_memory_format(channels_last)
        accel.select(self)  # the forms of the new device and dtype
        return self

    def _channels_last_input(self, x: torch.Tensor) -> torch.Tensor:
        """The input in the backbone's memory format (a no-op when it is there already)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _check_input(self, x: torch.Tensor, min_size: int = 1) -> None:
        """Refuse an input that is not (B, in_channels, H, W) with H, W >= ``min_size``.

        Args:
            x (Tensor): the input.
            min_size (int): the smallest side accepted. Defaults to 1.

        Raises:
            ValueError: x has another shape, another channel count or too small a side.
        """
        expected = getattr(self, 'in_channels', None)
        if x.dim() != 4 or (expected is not None and x.shape[1] != expected):
            raise ValueError(f'{type(self).__name__} takes images (B, {expected}, H, W), got a '
                             f'tensor of shape {tuple(x.shape)}')
        if min(x.shape[-2:]) < min_size:
            raise ValueError(f'{type(self).__name__}: the input {tuple(x.shape[-2:])} is too '
                             f'small; both sides must be at least {min_size}')

    def _parse_out_indices(self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        """``out_indices`` (an int or a sequence of ints, as in mmpretrain) as a sorted tuple
        of stage indices in 0..num_stages-1.

        Raises:
            TypeError: neither an int nor a sequence (e.g. a dict, a set or a str).
            ValueError: empty, an entry out of range or not an int, or a stage twice.
        """
        n = self.num_stages
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        if not isinstance(out_indices, Sequence) or isinstance(out_indices, str):
            raise TypeError(f'out_indices must be an int or a sequence of ints (stage indices '
                            f'in {-n}..{n - 1}), got {type(out_indices).__name__} '
                            f'{out_indices!r}')
        if len(out_indices) == 0:
            raise ValueError(f'out_indices is empty; give at least one stage index (0..{n - 1})')
        result = []
        for index in out_indices:
            if not isinstance(index, int) or not -n <= index < n:
                raise ValueError(f'out_indices must be stage indices in {-n}..{n - 1} '
                                 f'({self.stage_desc}), got {index!r} in {tuple(out_indices)}')
            result.append(index % n)
        if len(set(result)) != len(result):
            raise ValueError(f'out_indices has a stage twice: {tuple(out_indices)}')
        return tuple(sorted(result))  # outputs come in stage order

    def _check_frozen_stages(self, frozen_stages: int) -> int:
        if not -1 <= frozen_stages <= self.num_stages:
            raise ValueError(f'frozen_stages must be in -1..{self.num_stages} (-1: none, 0: the '
                             f'stem, i: the stem and the first i stages), got {frozen_stages}')
        return frozen_stages

    # ---------------------------------------------------------------- optimisers
    def no_weight_decay(self) -> set:
        """Names of parameters that optimisers should not decay (beyond norms and biases)."""
        return set()

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer depth of a parameter for mmpretrain's layer-wise learning-rate decay
        (``LearningRateDecayOptimWrapperConstructor``): 0 for the stem, i + 1 for stage i (with
        the downsampling before it), ``num_stages + 1`` for the rest (output norms, the head).

        Args:
            param_name (str): the parameter's full name.
            prefix (str): the backbone's prefix in ``param_name``, e.g. ``'backbone.'``.
                Defaults to ``''``.

        Returns:
            tuple[int, int]: (depth, number of depths).
        """
        num = self.num_stages + 2
        if not param_name.startswith(prefix):
            return num - 1, num
        m = re.match(r'(stages|layers|downsamples)\.(\d+)\.', param_name[len(prefix):])
        if m:
            # FCViT's downsamples.i sits before stages.i + 1
            return int(m.group(2)) + 1 + (m.group(1) == 'downsamples'), num
        if param_name[len(prefix):].startswith(('stem', 'patch_embed')):
            return 0, num
        return num - 1, num

    # ---------------------------------------------------------------- freezing
    def _frozen_modules(self) -> List[nn.Module]:
        """The modules ``frozen_stages`` freezes."""
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
        # every module's mode is set now (the end of __init__ and of train()): its form
        accel.select(self)

    def train(self, mode: bool = True) -> 'BaseBackbone':
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        self._freeze_stages()
        return self

    # ---------------------------------------------------------------- pretrained
    def init_weights(self) -> None:
        """Other ``init_cfg`` entries first, then a Pretrained one, only if it fits."""
        pretrained, others = _split_init_cfg(self.init_cfg)
        if pretrained is None or self._is_init:
            super().init_weights()
            return
        state = load_fitting_state_dict(self, pretrained, self.optional_pretrained,
                                        self.resizable_pretrained)
        self.init_cfg = others or None
        try:
            super().init_weights()  # children and any non-pretrained entries
        finally:
            self.init_cfg = [*others, pretrained] if others else pretrained
        self.load_state_dict(state, strict=False)
        print_log(f'{type(self).__name__}: loaded {len(state)} tensors from '
                  f"{pretrained['checkpoint']}", logger='current')
