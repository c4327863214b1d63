"""The authors' released models beside this package's, timed in turns in one process.

    python tools/analysis/vs_released.py --pslt ~/src/PSLT --fcvit ~/src/FCViT \
        --bvit ~/src/BViT --dense ~/src/Dense-ViT [--batch 16] [--rounds 5] [--memory] \
        [--bound] [--compile]

Each option names a checkout of the authors' repository (github.com/lazyGj/PSLT,
ma-xu/FCViT, koala719/BViT, koala719/Dense-ViT); the families without one are skipped. Nothing of
them is copied: their model files are imported from there.

What is compared: whole 1000-class classifiers at 224x224 (``--size HxW`` for another input:
only the released FCViT takes other sizes, the other released classifiers assert or slice for
224; those families are then reported as skipped), fp32, on the CPU or ``--device``. The
released models are PSLT (embed 36), ``fcvit_b12``, BViT-5M (its 7x7/2 stem, 50 tokens) and
``dDeiT_Ti``; ours are the same archs (``PSLT('base')``, ``FCViT('b12')``,
``BViT('tiny', released_stem=True)``, ``DenseDeiT('tiny')``) with the released head's layout
(global average pooling or the class token, then a Linear). The two have the same number of
parameters (printed). Per round, each model runs inference (``inference_mode``) and a training step
(forward, cross-entropy, backward); the medians over the rounds and their ratio are printed.
Drop path is as each side builds it by default (PSLT 0.2 on both sides, the others none).

``--compile`` runs ours through ``torch.compile`` (inductor) against the released code in eager
mode, and prints the compilation time (its first inference and training step) and how far the
compiled inference output is from the eager one.

``--memory [N]`` also runs each model alone in fresh processes (inference and a training step, N
times each, 3 by default, in turns) and prints the median growth of their peak resident set
(CPU) or ``torch.cuda.max_memory_allocated``, with the range: on the CPU one process's peak
moves by up to ~1.6x from run to run.

``--bound`` also counts the MACs of each side's inference and training step (FlopCounterMode,
backward included) and measures the machine's fp32 matmul rate (2048^3 products, timed in every
round beside the models; the best seen). Ours' MACs over that rate is the least time any fp32
code computing them can take, so ``released time / that`` bounds the ratio ours can reach on
this machine without computing less (convolutions and small GEMMs run below the square
product's rate: the true bound is lower). On the CPU it also times the matmul, convolution and
attention kernels each side calls in a step, as they ran and again warm (``KernelTimer``), and
prints ``released time / ours' kernel time``: the ratio ours would reach with the same kernels
if everything else (norms, activations, copies) cost nothing.

The released files import a few helpers from timm (``DropPath``, ``trunc_normal_``, ``to_2tuple``,
``register_model``). Where timm is not installed, minimal equivalents are put in its place for
the import (said on stderr); they only run inside the released models, identically for both
sides' timing (drop path: timm's per-sample form).
"""
import argparse
import collections
import collections.abc
import importlib
import json
import os
import statistics
import subprocess
import sys
import types
from typing import Tuple

import torch
from torch import nn

FAMILIES = ('pslt', 'fcvit', 'bvit', 'dense')


def _timm_helpers() -> None:
    """Make ``timm``'s helpers that the released model files import available."""
    try:
        import timm  # noqa: F401
        return
    except ImportError:
        pass
    print('vs_released: timm is not installed; the released files get minimal stand-ins for '
          'DropPath, trunc_normal_, to_2tuple and register_model', file=sys.stderr)

    class DropPath(nn.Module):
        def __init__(self, drop_prob=0.):
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x):
            if not self.training or not self.drop_prob:
                return x
            keep = 1 - self.drop_prob
            mask = x.new_empty((x.shape[0], ) + (1, ) * (x.dim() - 1)).bernoulli_(keep)
            return x * mask / keep

    def to_2tuple(x):
        return tuple(x) if isinstance(x, collections.abc.Iterable) else (x, x)

    def trunc_normal_(tensor, mean=0., std=1., a=-2., b=2.):
        return nn.init.trunc_normal_(tensor, mean, std, a, b)

    names = {
        'timm': {},
        'timm.models': {},
        'timm.models.registry': dict(register_model=lambda fn: fn),
        'timm.models.layers': dict(DropPath=DropPath, to_2tuple=to_2tuple,
                                   trunc_normal_=trunc_normal_),
        'timm.models.layers.helpers': dict(to_2tuple=to_2tuple),
        'timm.models.vision_transformer': dict(VisionTransformer=object,
                                               _cfg=lambda **kw: kw),
        'timm.data': dict(IMAGENET_DEFAULT_MEAN=(0.485, 0.456, 0.406),
                          IMAGENET_DEFAULT_STD=(0.229, 0.224, 0.225)),
    }
    for name, attrs in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def build_released(family: str, root: str) -> nn.Module:
    """The authors' classifier, imported from their checkout ``root``."""
    _timm_helpers()
    sub = {'pslt': 'classification'}.get(family, '')
    sys.path.insert(0, os.path.join(root, sub))
    # BViT's and Dense-ViT's checkouts both have a top-level package ``model``: forget the one
    # imported from another checkout
    top = {'pslt': 'pslt', 'fcvit': 'models'}.get(family, 'model')
    for name in [n for n in sys.modules if n == top or n.startswith(top + '.')]:
        del sys.modules[name]
    if family == 'pslt':
        return importlib.import_module('pslt').PSLT()
    if family == 'fcvit':
        return importlib.import_module('models.fcvit').fcvit_b12()
    if family == 'bvit':  # BViT_Ti() hard-codes 2 classes; the same settings with 1000
        return importlib.import_module('model.layer.bvit').BViT(
            image_size=224, patch_size=16, num_classes=1000, dim=192, depth=12, heads=3,
            mlp_dim=768, dropout=0., emb_dropout=0.)
    return importlib.import_module('model.layer.denseViT').dDeiT_Ti()


class Classifier(nn.Module):
    """A backbone's last output, pooled (maps) or as it is (class token), then a Linear."""

    def __init__(self, backbone: nn.Module, num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():
            backbone.eval()
            channels = self._features(torch.zeros(1, 3, 224, 224)).shape[1]
        self.head = nn.Linear(channels, num_classes)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.backbone(x)[-1]
        return out.mean((2, 3)) if out.dim() == 4 else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._features(x))


def build_ours(family: str) -> nn.Module:
    from visattn_mm.models.backbones import PSLT, BViT, DenseDeiT, FCViT
    return Classifier({
        'pslt': lambda: PSLT('base', out_indices=(3, ), final_norm=True),
        'fcvit': lambda: FCViT('b12', out_indices=(3, )),
        'bvit': lambda: BViT('tiny', released_stem=True, out_type='cls_token'),
        'dense': lambda: DenseDeiT('tiny', out_type='cls_token'),
    }[family]())


def run_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, train: bool) -> float:
    from visattn_mm.utils.benchmarking import timed_step
    return timed_step(model, x, train, lambda logits: nn.functional.cross_entropy(logits, y))


def interleave(family: str, root: str, batch: int, rounds: int, device: str,
               size: Tuple[int, int] = (224, 224), with_bound: bool = False,
               compile_ours: bool = False) -> dict:
    """Both models timed in turns; ``skipped`` says why where one of them refuses ``size``;
    ``with_bound``: also :func:`bound`, at the best matmul rate seen over the rounds (timed in
    every round beside the models: a shared machine's rate drifts with them);
    ``compile_ours``: ours through ``torch.compile`` (its first inference and training step,
    which compile, are reported as ``compile_s``; its output against the eager model's as
    ``compiled_max_rel_diff``)."""
    eager = build_ours(family).to(device)
    models = dict(released=build_released(family, root).to(device),
                  ours=torch.compile(eager) if compile_ours else eager)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    row = dict(family=family, batch=batch, size=list(size), rounds=rounds, device=device,
               params=params)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, *size, device=device)
    y = torch.randint(0, 1000, (batch, ), device=device)
    # does each side take this size? (the eager model: a compiled one would compile for it)
    for name, model in dict(models, ours=eager).items():
        try:
            run_step(model, x[:1], y[:1], False)
        except (AssertionError, ValueError, RuntimeError) as e:  # einops' error is a RuntimeError
            row['skipped'] = f'{name} refuses {size[0]}x{size[1]}: {str(e).splitlines()[0]}'
            return row
    from visattn_mm.utils.benchmarking import matmul_gmacs_per_s
    times, matmul_rate = {}, 0.
    for r in range(rounds + 1):  # round 0 warms up (and compiles)
        for name, model in models.items():
            for train in (False, True):
                elapsed = run_step(model, x, y, train)
                if r:
                    times.setdefault((name, train), []).append(elapsed)
                elif compile_ours and name == 'ours':
                    row.setdefault('compile_s', {})['train' if train else 'eval'] = elapsed
        if with_bound and r:
            matmul_rate = max(matmul_rate, matmul_gmacs_per_s(device, repeats=3))
    for train, key in ((False, 'eval'), (True, 'train')):
        released, ours = (statistics.median(times[n, train]) for n in ('released', 'ours'))
        row[key] = dict(released_imgs_per_s=batch / released, ours_imgs_per_s=batch / ours,
                        ratio=released / ours)
    if compile_ours:
        with torch.inference_mode():
            out, ref = models['ours'].eval()(x), eager.eval()(x)
        row['compiled_max_rel_diff'] = float((out - ref).abs().max() / ref.abs().max())
    if with_bound:
        row['bound'] = bound(models, x, y, row, matmul_rate)
    return row


def bound(models: dict, x: torch.Tensor, y: torch.Tensor, row: dict, matmul_rate: float) -> dict:
    """Per step (inference, training): each side's GMACs, and the ratio to the released code's
    measured time that ours' MACs at ``matmul_rate`` (GMAC/s) would give (no fp32 code
    computing those MACs on this machine runs faster); on the CPU also the seconds of each
    side's matmul, convolution and attention kernels (``KernelTimer``: as they ran, and warm)
    and the ratio that ours' would give if every other op were free."""
    from visattn_mm.compat import FLOPS_UNDER_INFERENCE_MODE
    from visattn_mm.utils.benchmarking import count_gmacs, kernel_seconds
    if not FLOPS_UNDER_INFERENCE_MODE:
        raise SystemExit(f'--bound counts MACs of inference steps, which the FlopCounterMode of '
                         f'torch {torch.__version__} misses (it needs torch >= 2.2)')
    out = dict(matmul_gmacs_per_s=matmul_rate)
    for train, key in ((False, 'eval'), (True, 'train')):
        gmacs = {name: count_gmacs(run_step, model, x, y, train, grad=train)
                 for name, model in models.items()}
        released_s = x.shape[0] / row[key]['released_imgs_per_s']
        out[key] = dict(released_gmacs=gmacs['released'], ours_gmacs=gmacs['ours'],
                        max_ratio=released_s / (gmacs['ours'] / matmul_rate))
        if x.device.type == 'cpu':
            for name, model in models.items():
                timer = kernel_seconds(run_step, model, x, y, train)
                out[key][f'{name}_kernel_s'] = timer.seconds
                out[key][f'{name}_kernel_warm_s'] = timer.warm_seconds
            out[key]['kernel_max_ratio'] = released_s / out[key]['ours_kernel_s']
    return out


def peak_memory(family: str, root: str, which: str, train: bool, batch: int,
                device: str, size: Tuple[int, int] = (224, 224)) -> float:
    """Run in a child: the model alone, 3 steps; MiB of peak growth."""
    x = torch.randn(batch, 3, *size, device=device)
    y = torch.randint(0, 1000, (batch, ), device=device)
    from visattn_mm.utils.benchmarking import peak_rss_growth_mib, reset_peak_rss
    base = reset_peak_rss()
    model = (build_released(family, root) if which == 'released' else build_ours(family))
    model = model.to(device)
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        run_step(model, x, y, train)
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_growth_mib(base)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for family in FAMILIES:
        parser.add_argument(f'--{family}', metavar='DIR', help='checkout of the authors\' code')
    parser.add_argument('--batch', type=int, default=16)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--size', default='224x224', help='input HxW (default 224x224)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--memory', nargs='?', type=int, const=3, default=0, metavar='N',
                        help='also the peak memory: the median of N fresh processes per model '
                             'and step (3 when N is left out)')
    parser.add_argument('--bound', action='store_true',
                        help='also the MACs per step and the best ratio they allow here')
    parser.add_argument('--compile', action='store_true',
                        help='ours through torch.compile (inductor), the released code eager')
    parser.add_argument('--malloc', choices=('keep', 'default'), default='keep',
                        help='glibc malloc on the CPU: as tools/train.py sets it (keep) or '
                             'glibc\'s defaults')
    parser.add_argument('--json', help='also write the rows here')
    parser.add_argument('--child', nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        size = tuple(int(v) for v in args.size.lower().split('x'))
        assert len(size) == 2 and min(size) > 0
    except (ValueError, AssertionError):
        parser.error(f'--size must be HxW with positive integers, e.g. 800x1333; got {args.size!r}')
    if args.memory < 0:
        parser.error(f'--memory N takes N >= 1 processes (0: no memory), got {args.memory}')
    if args.compile and (args.bound or args.memory):
        parser.error('--compile times the compiled model only: run --bound and --memory '
                     'without it')
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))))
    if args.device == 'cpu' and args.malloc == 'keep':
        from visattn_mm.apis.cpu import keep_freed_cpu_memory
        keep_freed_cpu_memory()
    if args.child:
        family, root, which, mode = args.child
        print(json.dumps(peak_memory(family, root, which, mode == 'train', args.batch,
                                     args.device, size)))
        return
    chosen = [f for f in FAMILIES if getattr(args, f)]
    if not chosen:
        parser.error('name at least one checkout (--pslt, --fcvit, --bvit, --dense)')
    from visattn_mm.utils.benchmarking import describe_device
    machine = describe_device(args.device)
    rows = []
    for family in chosen:
        root = os.path.expanduser(getattr(args, family))
        row = interleave(family, root, args.batch, args.rounds, args.device, size, args.bound,
                         args.compile)
        head = (f'{family} (parameters: released {row["params"]["released"]:,}, ours '
                f'{row["params"]["ours"]:,}), {size[0]}x{size[1]}, batch {args.batch}, '
                f'{args.device} ({machine}):')
        rows.append(row)
        if 'skipped' in row:
            print(f'{head}\n  skipped: {row["skipped"]}', flush=True)
            continue
        if args.memory:
            # the CPU peak of one process moves by up to ~1.6x from run to run (where glibc's
            # arenas put the large blocks): the median of N, in turns
            runs = collections.defaultdict(list)
            for _ in range(args.memory):
                for which in ('released', 'ours'):
                    for mode in ('eval', 'train'):
                        out = subprocess.run(
                            [sys.executable, os.path.abspath(__file__), '--batch',
                             str(args.batch), '--device', args.device, '--malloc', args.malloc,
                             '--size', args.size, '--child', family, root, which, mode],
                            check=True, capture_output=True, text=True).stdout
                        runs[f'{which}_{mode}'].append(json.loads(out.splitlines()[-1]))
            row['peak_mem_runs_mb'] = dict(runs)
            row['peak_mem_mb'] = {k: statistics.median(v) for k, v in runs.items()}
        print(head)
        if 'compile_s' in row:
            c = row['compile_s']
            print(f'  ours through torch.compile: first inference {c["eval"]:.0f} s, first '
                  f'training step {c["train"]:.0f} s (compiling); inference output against the '
                  f'eager model: max relative difference {row["compiled_max_rel_diff"]:.1e}',
                  flush=True)
        for key in ('eval', 'train'):
            r = row[key]
            line = (f'  {key:5}  released {r["released_imgs_per_s"]:7.2f} img/s   ours '
                    f'{r["ours_imgs_per_s"]:7.2f} img/s   ours / released {r["ratio"]:.2f}x')
            if args.memory:
                m, runs = row['peak_mem_mb'], row['peak_mem_runs_mb']
                line += f'   peak MiB (median of {args.memory}): ' + ', '.join(
                    f'{k} {m[f"{k}_{key}"]:.0f} ({min(runs[f"{k}_{key}"]):.0f}-'
                    f'{max(runs[f"{k}_{key}"]):.0f})' for k in ('released', 'ours'))
            print(line, flush=True)
        for key in ('eval', 'train') if args.bound else ():
            b, rate = row['bound'][key], row['bound']['matmul_gmacs_per_s']
            print(f'  {key:5}  GMACs per step: released {b["released_gmacs"]:.1f}, ours '
                  f'{b["ours_gmacs"]:.1f}; at {rate:.0f} GMAC/s (fp32 matmul, best seen) ours '
                  f'can reach at most {b["max_ratio"]:.2f}x the released time', flush=True)
            if 'kernel_max_ratio' in b:
                step = {k: args.batch / row[key][f'{k}_imgs_per_s'] for k in ('released', 'ours')}
                print(f'  {key:5}  matmul/conv/attention kernels, ms as run (warm) of the step: '
                      + ', '.join(f'{k} {b[f"{k}_kernel_s"] * 1e3:.1f} '
                                  f'({b[f"{k}_kernel_warm_s"] * 1e3:.1f}) of {step[k] * 1e3:.1f}'
                                  for k in ('released', 'ours'))
                      + f'; with every other op free ours would run {b["kernel_max_ratio"]:.2f}x'
                      ' the released time', flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=2)


if __name__ == '__main__':
    main()
