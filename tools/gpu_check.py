#!/usr/bin/env python
"""One-shot check of the backbones on a CUDA GPU: numerics, speed and short AMP training runs.

    python tools/gpu_check.py                   # everything, on cuda (sized for < 8 min, H100)
    python tools/gpu_check.py --quick --out gpu.md       # smaller and fewer; tables to a file
    python tools/gpu_check.py --device cpu --quick --skip-train   # the CPU self-check
    bash tools/gpu_check.sh [options]           # the same with the project's venv python

Not yet run on a GPU: it was written and exercised on a CPU-only machine (docs/gpu.md).

Three parts, each printing a markdown table (``--out FILE`` writes them all to FILE):

1. Numerics. Every backbone family (BViT, BroadSwin, BroadT2T, DenseDeiT, DenseSwin, PSLT,
   FCViT; small archs) runs forward (eval + no_grad, then train mode) and backward on the device
   in fp32 and under ``torch.autocast`` fp16 and bf16, from the same weights and input as a CPU
   fp32 reference. Reported: relative errors ``||a - b|| / ||b||`` (b: the CPU fp32 result) of
   each output and of the whole set of parameter gradients; a row fails above its tolerance
   (fp32 1e-3 with TF32 off, fp16 1e-2, bf16 5e-2; one measured exception, PSLT's train-mode
   outputs and gradients, see ``TRAIN_TOLERANCES``), on a non-finite value or when the
   parameters that get a gradient differ.
2. Speed. The ImageNet classifier of each family (built from its config in configs/) and
   mmpretrain's DeiT-Ti and Swin-T, all in one process and timed in turns (A B C ... A B C ...):
   inference (eval, no_grad) and a training step (forward, cross-entropy, backward, SGD step) at
   batch 64 x 224 x 224, NCHW and channels-last, fp32 and AMP fp16. Images/s (median of the
   rounds) and the ratio to each anchor (median of the per-round ratios).
3. Training. ``tools/train.py --amp`` for a few iterations of one mmpretrain and one mmseg config
   on generated mini datasets (visattn_mm.testing), in a temporary folder; the logged losses must
   be finite.

Only backbones, classifiers and an mmseg model whose decode head (Semantic FPN's ``FPNHead``:
convolutions and bilinear resizing) needs no mmcv op: the mmcv wheel of this project is built
with CPU ops only, so nothing here may call ``mmcv.ops`` on a CUDA tensor.

``--device cpu`` runs the same code on the CPU (part 1 compares the CPU with itself, so fp32 must
agree exactly; autocast is bf16 only, the CPU's mixed precision in this project, as in
``tools/train.py --amp``; part 2's AMP rows are bf16). Exit status: 0 when every check passed,
1 when one failed, 2 when the device is unavailable. docs/gpu.md describes the check and its
tolerances.
"""
import argparse
import contextlib
import copy
import glob
import json
import logging
import math
import os
import os.path as osp
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # the checkout's visattn_mm, whatever is installed
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------

# relative L2 error ||a - b|| / ||b|| allowed against the CPU fp32 result, per output and for
# the whole set of parameter gradients (docs/gpu.md says why these values)
TOLERANCES = {'fp32': 1e-3, 'fp16': 1e-2, 'bf16': 5e-2}
# The one exception, for the train-mode outputs and the gradients only (eval-mode outputs keep the
# tolerances above): PSLT in train mode. Its BatchNorms then normalise by batch statistics, so at
# initialisation each of PSLT-tiny's 39 ladder branches adds, through the BatchNorm that ends its
# MLP, a unit-variance term rounded afresh, and the rounding error grows through stages 3 and 4.
# Measured on the CPU, autocast against fp32, two seeds: at batch 4 x 224 px (the GPU run's size)
# train outputs 8.3-8.4e-3 (fp16) and 6.6-7.0e-2 (bf16), gradients 1.5-1.6e-2 and 1.05-1.13e-1; at
# batch 2 x 96 px (the CPU --quick size) gradients up to 2.2e-2 and 1.7e-1; in eval mode the
# outputs are off by at most 2.9e-3 and 1.4e-2. The limits leave a margin of 1.5-2.5 over those: a
# device that rounds worse than the format does still fails. No other backbone comes near its
# tolerance (docs/gpu.md).
TRAIN_TOLERANCES = {('PSLT-tiny', 'fp16'): 4e-2, ('PSLT-tiny', 'bf16'): 2.5e-1}
DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}

# part 1: name -> backbone config (visattn_mm registry). Small archs, no drop path or dropout
# (the CPU and the GPU draw different random numbers), train mode: BatchNorm on batch statistics.
# The ViTs are checked with their patch-token maps (the dense-prediction path) and with the cls
# token (the classifier path, where the last layer computes the cls token's row only).
BACKBONES: Dict[str, dict] = {
    'BViT-Ti featmap': dict(type='visattn_mm.BViT', arch='tiny', out_type='featmap',
                            out_indices=(5, 11), drop_path_rate=0.),
    'BViT-Ti cls': dict(type='visattn_mm.BViT', arch='tiny', out_type='cls_token',
                        drop_path_rate=0.),
    'BroadSwin-T': dict(type='visattn_mm.BroadSwinTransformer', arch='tiny', drop_path_rate=0.,
                        out_indices=(0, 1, 2, 3)),
    'BroadT2T-ViT-14': dict(type='visattn_mm.BroadT2TViT', embed_dims=384, num_layers=14,
                            t2t_cfg=dict(token_dims=64, use_performer=False),
                            layer_cfgs=dict(num_heads=6, feedforward_channels=3 * 384),
                            drop_path_rate=0., out_type='featmap', out_indices=(6, 13)),
    'DenseDeiT-Ti featmap': dict(type='visattn_mm.DenseDeiT', arch='tiny', out_type='featmap',
                                 out_indices=(5, 11), drop_path_rate=0.),
    'DenseDeiT-Ti cls': dict(type='visattn_mm.DenseDeiT', arch='tiny', out_type='cls_token',
                             drop_path_rate=0.),
    'DenseSwin-T': dict(type='visattn_mm.DenseSwinTransformer', arch='tiny', drop_path_rate=0.,
                        out_indices=(0, 1, 2, 3)),
    'PSLT-tiny': dict(type='visattn_mm.PSLT', arch='tiny', drop_path_rate=0.,
                      out_indices=(0, 1, 2, 3)),
    'FCViT-tiny': dict(type='visattn_mm.FCViT', arch='tiny', drop_path_rate=0.,
                       out_indices=(0, 1, 2, 3)),
}

# part 2: the anchors (mmpretrain's own models, as in its deit-tiny and swin-tiny configs) and
# each family's ImageNet config
ANCHORS: Dict[str, dict] = {
    'DeiT-Ti': dict(
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16,
                      drop_path_rate=0.1),
        neck=None,
        head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=192,
                  loss=dict(type='CrossEntropyLoss'))),
    'Swin-T': dict(
        type='ImageClassifier',
        backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=768,
                  loss=dict(type='CrossEntropyLoss'))),
}
CLASSIFIER_CONFIGS: Dict[str, str] = {
    'BViT-Ti': 'configs/bvit/bvit-tiny_4xb256_in1k.py',
    'BroadSwin-T': 'configs/bvit/broadswin-tiny_16xb64_in1k.py',
    'BroadT2T-ViT-14': 'configs/bvit/broadt2t-vit-t-14_8xb64_in1k.py',
    'DenseDeiT-Ti': 'configs/dense/dense-deit-tiny_4xb256_in1k.py',
    'DenseSwin-T': 'configs/dense/dense-swin-tiny_16xb64_in1k.py',
    'PSLT-base': 'configs/pslt/pslt-base_8xb128_in1k.py',
    'FCViT-tiny': 'configs/fcvit/fcvit-tiny_8xb128_in1k.py',
}

# part 3: (config, mini dataset, mini_config overrides), as tests/e2e/cases.py shortens them.
# The mmseg run is Semantic FPN: its FPNHead and FPN neck are ConvModules and bilinear resizing,
# no mmcv op (UperNet's PPM would be fine too; heads such as PointRend's call mmcv.ops).
TRAIN_RUNS: Dict[str, Tuple[str, str, dict]] = {
    'mmpretrain': ('configs/bvit/bvit-tiny_4xb256_in1k.py', 'imagenet',
                   dict(scale=(128, 110), crop=(96, 96), batch_size=8)),
    'mmseg': ('configs/fcvit/fpn_fcvit-b12_8xb4-40k_ade20k-512x512.py', 'ade20k',
              dict(scale=(256, 128), crop=(128, 128), batch_size=2)),
}


def init_quietly(model: torch.nn.Module) -> None:
    """``model.init_weights()`` without mmengine's per-parameter report."""
    from visattn_mm.visualization.config_model import quiet_mmengine
    with quiet_mmengine(logging.ERROR):
        model.init_weights()


def log(msg: str = '') -> None:
    print(msg, flush=True)


def md_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join('---' for _ in headers) + '|']
    lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return '\n'.join(lines)


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """``||a - b|| / ||b||`` in float64 (``||a - b||`` where b is all zeros; inf where a value
    is not finite)."""
    a, b = a.double(), b.double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.inf
    den = b.norm().item()
    num = (a - b).norm().item()
    return num / den if den > 0 else num


@contextlib.contextmanager
def tf32_off():
    """fp32 matmuls and convolutions in full fp32 on CUDA (the legacy flags, read once and
    restored; they are plain switches on a machine without CUDA)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul
        torch.backends.cudnn.allow_tf32 = cudnn


def precisions(device: torch.device) -> List[str]:
    """fp32 and the autocast dtypes checked: fp16 and bf16 on CUDA, bf16 on the CPU."""
    return ['fp32', 'fp16', 'bf16'] if device.type == 'cuda' else ['fp32', 'bf16']


# --------------------------------------------------------------------------------------------
# part 1: numerics against the CPU fp32 result
# --------------------------------------------------------------------------------------------

def _outputs(out) -> List[torch.Tensor]:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _run_backbone(model: torch.nn.Module, x: torch.Tensor, probes: Optional[List[torch.Tensor]],
                  device: torch.device, precision: str):
    """Eval outputs (no_grad), then train-mode outputs and parameter gradients of
    ``sum_i <out_i, probe_i> / B``, all returned as CPU fp32. ``probes`` None: make them (seeded
    normal noise in the outputs' shapes) from this run's outputs."""
    model = model.to(device)
    x = x.to(device)
    model.eval()
    with torch.no_grad(), autocast(device, precision):
        eval_outs = [o.float().cpu() for o in _outputs(model(x))]
    model.train()
    model.zero_grad(set_to_none=True)
    with autocast(device, precision):
        outs = _outputs(model(x))
    if probes is None:
        gen = torch.Generator().manual_seed(1)
        probes = [torch.randn(o.shape, generator=gen) for o in outs]
    # a linear loss: the gradient reaching each output is probe / B whatever the precision
    # (about 0.5, far from fp16's underflow), so the gradients measure the backward pass alone
    loss = sum((o.float() * p.to(device)).sum() for o, p in zip(outs, probes)) / x.shape[0]
    loss.backward()
    grads = {n: (p.grad.detach().float().cpu() if p.grad is not None else None)
             for n, p in model.named_parameters() if p.requires_grad}
    train_outs = [o.detach().float().cpu() for o in outs]
    return eval_outs, train_outs, grads, probes


def _sci(value: float) -> str:
    """1e-03, 2.5e-01: a tolerance as written."""
    return f'{value:.1e}'.replace('.0e', 'e')


def _compare(ref, got, precision: str, name: str = '') -> Tuple[list, bool]:
    """One table row's cells (from the errors column on) and whether it passes."""
    ref_eval, ref_train, ref_grads = ref
    got_eval, got_train, got_grads = got
    tol = TOLERANCES[precision]
    tol_train = TRAIN_TOLERANCES.get((name, precision), tol)
    problems = []
    if [o.shape for o in got_train] != [o.shape for o in ref_train] or \
            [o.shape for o in got_eval] != [o.shape for o in ref_eval]:
        problems.append('output shapes differ')
        err_train = err_eval = math.inf
    else:
        err_train = max(rel_err(a, b) for a, b in zip(got_train, ref_train))
        err_eval = max(rel_err(a, b) for a, b in zip(got_eval, ref_eval))
    with_grad = sorted(n for n, g in ref_grads.items() if g is not None)
    got_with_grad = sorted(n for n, g in got_grads.items() if g is not None)
    if with_grad != got_with_grad:
        diff = sorted(set(with_grad) ^ set(got_with_grad))
        problems.append(f'gradient present on one side only: {", ".join(diff[:3])}')
    common = [n for n in with_grad if got_grads.get(n) is not None]
    if common:
        err_grad = rel_err(torch.cat([got_grads[n].flatten() for n in common]),
                           torch.cat([ref_grads[n].flatten() for n in common]))
        # tensors with a real share of the gradient (not those whose exact gradient is 0,
        # such as a bias before a BatchNorm, left with rounding noise)
        floor = 1e-4 * torch.cat([ref_grads[n].flatten() for n in common]).norm()
        per_tensor = [(rel_err(got_grads[n], ref_grads[n]), n) for n in common
                      if ref_grads[n].norm() > floor]
        worst_err, worst_name = max(per_tensor) if per_tensor else (0.0, '-')
        worst = f'{worst_err:.1e} `{worst_name}`'
    else:
        err_grad, worst = math.inf, '-'
        problems.append('no parameter gradient')
    for what, err, limit in (('train outputs', err_train, tol_train),
                             ('eval outputs', err_eval, tol), ('gradients', err_grad, tol_train)):
        if not math.isfinite(err):
            problems.append(f'{what} not finite')
        elif err > limit:
            problems.append(f'{what} {err:.1e} > {_sci(limit)}')
    ok = not problems
    shown_tol = _sci(tol) + ('' if tol_train == tol else f' (train, grads {_sci(tol_train)})')
    cells = [f'{err_train:.2e}', f'{err_eval:.2e}', f'{err_grad:.2e}', worst, shown_tol,
             'pass' if ok else 'FAIL: ' + '; '.join(problems)]
    return cells, ok


def check_numerics(device: torch.device, batch: int, size: int,
                   names: Optional[Sequence[str]] = None) -> Tuple[str, bool]:
    """Part 1: every backbone of :data:`BACKBONES` on ``device`` against the CPU in fp32."""
    import visattn_mm  # noqa: F401  (registers the backbones)
    from visattn_mm.registry import MODELS
    rows, all_ok = [], True
    with tf32_off():
        for name in names or BACKBONES:
            t0 = time.perf_counter()
            try:
                torch.manual_seed(0)
                pristine = MODELS.build(copy.deepcopy(BACKBONES[name]))
                init_quietly(pristine)  # the weights a training run starts from
                x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
                ev, tr, gr, probes = _run_backbone(copy.deepcopy(pristine), x, None,
                                                   torch.device('cpu'), 'fp32')
                ref = (ev, tr, gr)
            except Exception as err:  # noqa: BLE001  (reported in the table, the rest goes on)
                traceback.print_exc()
                rows.append([name, 'cpu fp32', '-', '-', '-', '-', '-', f'FAIL: {err!r}'[:200]])
                all_ok = False
                continue
            for precision in precisions(device):
                try:
                    ev, tr, gr, _ = _run_backbone(copy.deepcopy(pristine), x, probes, device,
                                                  precision)
                    cells, ok = _compare(ref, (ev, tr, gr), precision, name)
                except Exception as err:  # noqa: BLE001
                    traceback.print_exc()
                    cells, ok = ['-', '-', '-', '-', _sci(TOLERANCES[precision]),
                                 f'FAIL: {err!r}'[:200]], False
                rows.append([name, precision] + cells)
                all_ok &= ok
            if device.type == 'cuda':
                torch.cuda.empty_cache()
            log(f'  {name}: {time.perf_counter() - t0:.1f} s')
    headers = ['backbone', 'precision', 'outputs, train', 'outputs, eval', 'gradients (all)',
               'worst gradient tensor (info)', 'tolerance', 'result']
    title = (f'### 1. Numerics: {device} against CPU fp32 (batch {batch}, {size}x{size}; '
             'relative L2 error ||a-b||/||b||, the largest over the outputs; fp32 with TF32 off)')
    return title + '\n\n' + md_table(headers, rows), all_ok


# --------------------------------------------------------------------------------------------
# part 2: classifier speed, interleaved with mmpretrain's DeiT-Ti and Swin-T
# --------------------------------------------------------------------------------------------

def build_classifier(name: str, size: int) -> torch.nn.Module:
    """The anchor ``name`` or the model of a family's ImageNet config, initialised as for
    training (no checkpoint is loaded: only the speed is measured). Below 224 px (the CPU's
    --quick run) the Swin-T anchor pads maps smaller than its window instead of refusing them."""
    from visattn_mm.apis.config import build_model_in_scope, load_config
    if name in ANCHORS:
        import mmpretrain.models  # noqa: F401
        model_cfg, scope = copy.deepcopy(ANCHORS[name]), 'mmpretrain'
        if model_cfg['backbone']['type'] == 'SwinTransformer' and size < 224:
            model_cfg['backbone']['pad_small_map'] = True
    else:
        cfg = load_config(osp.join(ROOT, CLASSIFIER_CONFIGS[name]))
        model_cfg, scope = copy.deepcopy(cfg.model), cfg.get('default_scope', 'mmpretrain')
        model_cfg.pop('pretrained', None)
        for node in (model_cfg, model_cfg.backbone):
            if 'Pretrained' in str(node.get('init_cfg')):
                node.pop('init_cfg')
    model = build_model_in_scope(model_cfg, scope)
    init_quietly(model)
    return model


def set_memory_format(model: torch.nn.Module, channels_last: bool) -> None:
    """Weights (and the inputs the model is given) in one memory format. ``model.to`` alone is
    not enough for PSLT and FCViT: with ``channels_last=None`` (their default) they pick the
    format per device whenever they are moved, so the choice is fixed on them explicitly."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    for module in model.modules():
        if hasattr(module, '_use_channels_last'):  # visattn_mm backbones
            module._use_channels_last(channels_last)


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def time_classifiers(device: torch.device, batch: int, size: int, rounds: int, iters: int,
                     warmup: int, names: Optional[Sequence[str]] = None) -> Tuple[str, bool]:
    """Part 2: images/s of inference and of a training step, the models timed in turns."""
    import visattn_mm  # noqa: F401
    names = list(names or list(ANCHORS) + list(CLASSIFIER_CONFIGS))
    anchors = [a for a in ANCHORS if a in names]
    blank = ['-'] * (1 + 2 * len(anchors))  # the cells after a failure's message
    models, rows, all_ok = {}, [], True
    for name in names:
        try:
            torch.manual_seed(0)
            models[name] = build_classifier(name, size).to(device)
        except Exception as err:  # noqa: BLE001
            traceback.print_exc()
            rows.append([name, '-', '-', f'FAIL (build): {err!r}'[:200]] + blank)
            all_ok = False
    amp = 'fp16' if device.type == 'cuda' else 'bf16'
    gen = torch.Generator().manual_seed(0)
    x_cpu = torch.randn(batch, 3, size, size, generator=gen)
    benchmark = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True  # as training runs set it; the warm-up absorbs it
    try:
        for channels_last in (False, True):
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            x = x_cpu.to(device).contiguous(memory_format=fmt)
            for precision in ('fp32', amp):
                log(f'  {"channels-last" if channels_last else "NCHW"} {precision}')
                steps = {}
                for name, model in list(models.items()):
                    try:
                        set_memory_format(model, channels_last)
                        steps[name] = _make_steps(model, x, device, precision)
                        for _ in range(warmup):
                            steps[name][0]()
                            steps[name][1]()
                    except Exception as err:  # noqa: BLE001
                        rows.append(_failed_row(name, channels_last, precision, err, device)
                                    + blank)
                        all_ok = False
                        steps.pop(name, None)
                # rounds of A B C ...: each model's inference, then its training step
                speed = {n: ([], []) for n in steps}
                for _ in range(rounds):
                    for name in list(steps):
                        try:
                            for kind, fn in enumerate(steps[name]):
                                sync(device)
                                t0 = time.perf_counter()
                                for _ in range(iters):
                                    fn()
                                sync(device)
                                speed[name][kind].append(batch * iters /
                                                         (time.perf_counter() - t0))
                        except Exception as err:  # noqa: BLE001  (e.g. out of memory)
                            rows.append(_failed_row(name, channels_last, precision, err,
                                                    device) + blank)
                            all_ok = False
                            del steps[name], speed[name]
                for name in steps:
                    row = [name, 'channels-last' if channels_last else 'NCHW', precision]
                    for kind in (0, 1):
                        row.append(f'{_median(speed[name][kind]):.1f}')
                        for anchor in anchors:
                            if anchor not in speed:
                                row.append('-')
                                continue
                            ratios = [a / b for a, b in zip(speed[name][kind],
                                                            speed[anchor][kind])]
                            row.append(f'{_median(ratios):.2f}')
                    rows.append(row)
                if device.type == 'cuda':
                    torch.cuda.empty_cache()
    finally:
        torch.backends.cudnn.benchmark = benchmark
    vs = [f'x {a}' for a in anchors]
    headers = ['model', 'layout', 'precision', 'inference img/s', *vs, 'train step img/s', *vs]
    if device.type == 'cuda':
        tf32 = (f'fp32 with PyTorch\'s TF32 settings as found (matmul '
                f'{torch.backends.cuda.matmul.allow_tf32}, cuDNN '
                f'{torch.backends.cudnn.allow_tf32}), AMP = autocast fp16 + GradScaler')
    else:
        tf32 = 'AMP = autocast bf16'
    title = (f'### 2. Speed on {device}: batch {batch} at {size}x{size}, median of {rounds} '
             f'interleaved rounds of {iters} steps after {warmup} warm-up steps; '
             f'x anchor = images/s ratio to the anchor in the same rounds (higher is faster); '
             f'{tf32}; cudnn.benchmark on; training step = forward, cross-entropy on random '
             'labels, backward, SGD (momentum 0.9)')
    return title + '\n\n' + md_table(headers, rows), all_ok


def _failed_row(name: str, channels_last: bool, precision: str, err: Exception,
                device: torch.device) -> list:
    """Print the traceback; the first cells of the table row of a model that failed."""
    traceback.print_exc()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return [name, 'channels-last' if channels_last else 'NCHW', precision,
            f'FAIL: {err!r}'[:200]]


def _make_steps(model: torch.nn.Module, x: torch.Tensor, device: torch.device,
                precision: str) -> Tuple[Callable[[], None], Callable[[], None]]:
    """(inference step, training step) closures for one model, input and precision."""
    optim = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    from visattn_mm.compat import grad_scaler  # torch.amp.GradScaler needs torch >= 2.3
    scaler = grad_scaler('cuda') if precision == 'fp16' else None
    labels = {}

    def infer() -> None:
        model.eval()
        with torch.no_grad(), autocast(device, precision):
            model(x, mode='tensor')

    def train() -> None:
        model.train()
        optim.zero_grad(set_to_none=True)
        with autocast(device, precision):
            logits = model(x, mode='tensor')
        if 'y' not in labels:
            labels['y'] = torch.randint(0, logits.shape[-1], (x.shape[0],), device=device,
                                        generator=torch.Generator(device).manual_seed(0))
        loss = F.cross_entropy(logits.float(), labels['y'])
        if scaler is None:
            loss.backward()
            optim.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optim)
            scaler.update()

    return infer, train


# --------------------------------------------------------------------------------------------
# part 3: tools/train.py --amp on mini datasets
# --------------------------------------------------------------------------------------------

def _losses(work_dir: str, log_text: str) -> Tuple[List[float], str]:
    """The logged ``loss`` values and where they were read: mmengine's scalars.json, else the
    text log."""
    values = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    record = json.loads(line)
                    if 'loss' in record and 'iter' in record:
                        values.append(float(record['loss']))
    if values:
        return values, 'scalars.json'
    return [float(v) for v in re.findall(r'\sloss: (\S+?)\s', log_text)], 'text log'


def _mini_set(kind: str, root: str, iters: int, batch: int) -> Tuple[str, int]:
    """Generate a mini dataset; returns its root and the schedule length for ``iters``
    iterations (iterations for iteration-based configs, epochs for epoch-based ones)."""
    from visattn_mm.testing import mini_datasets
    if kind == 'imagenet':  # epoch-based: enough epochs of ceil(N / batch) iterations
        mini_datasets.make_imagenet(root, seed=0, num_train=8, num_val=2)
        with open(osp.join(root, 'meta', 'train.txt')) as f:
            num = sum(1 for line in f if line.strip())
        return root, math.ceil(iters / math.ceil(num / batch))
    mini_datasets.make_ade20k(root, seed=0, num_train=8, num_val=4)
    return root, iters


def train_runs(device: torch.device, iters: int, timeout: int) -> Tuple[str, bool]:
    """Part 3: a few AMP iterations of each :data:`TRAIN_RUNS` config with tools/train.py."""
    from visattn_mm.testing.mini_config import make_mini_config
    rows, all_ok = [], True
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (ROOT, os.environ.get('PYTHONPATH')) if p))
    if device.type == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''  # the Runner picks CUDA whenever it sees one
    with tempfile.TemporaryDirectory(prefix='gpu_check_') as tmp:
        for toolbox, (config, kind, overrides) in TRAIN_RUNS.items():
            t0 = time.perf_counter()
            losses, source, amp, problem = [], '', '-', None
            try:
                data_root, length = _mini_set(kind, osp.join(tmp, kind), iters,
                                              overrides['batch_size'])
                cfg = make_mini_config(osp.join(ROOT, config), data_root, iters=length,
                                       validate=False, **overrides)
                cfg.default_hooks.logger.interval = 1  # every iteration's loss is checked
                cfg_path = osp.join(tmp, f'{toolbox}_mini.py')
                cfg.dump(cfg_path)
                work_dir = osp.join(tmp, f'work_{toolbox}')
                cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg_path,
                       '--work-dir', work_dir, '--amp']
                log(f'  {" ".join(cmd)}')
                proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                                      timeout=timeout, stdin=subprocess.DEVNULL)
                text = proc.stdout + proc.stderr
                amp = ', '.join(sorted(set(re.findall(
                    r'\b(?:visattn_mm\.)?(?:CPU)?AmpOptimWrapper\b', text)))) or 'not seen'
                losses, source = _losses(work_dir, text)
                if proc.returncode != 0:
                    problem = f'exit {proc.returncode}'
                elif not losses:
                    problem = 'no loss logged'
                elif not all(math.isfinite(v) for v in losses):
                    problem = 'non-finite loss'
                elif amp == 'not seen':  # the Runner logs its config: --amp did not take
                    problem = 'no AmpOptimWrapper in the log'
                if problem:
                    log(text[-6000:])
            except subprocess.TimeoutExpired:
                problem = f'timed out after {timeout} s'
            except Exception as err:  # noqa: BLE001
                traceback.print_exc()
                problem = repr(err)[:200]
            all_ok &= problem is None
            shown = (f'{len(losses)} ({source}): first {losses[0]:.4g}, last '
                     f'{losses[-1]:.4g}' if losses else '-')
            rows.append([toolbox, f'`{config}`', iters, amp, shown,
                         f'{time.perf_counter() - t0:.0f}',
                         'pass' if problem is None else f'FAIL: {problem}'])
    headers = ['toolbox', 'config', 'iterations (at least)', 'optimizer wrapper in the log',
               'logged losses', 'wall s', 'result']
    title = (f'### 3. `tools/train.py --amp` on mini datasets ({device.type}; '
             'the Runner picks the device itself)')
    return title + '\n\n' + md_table(headers, rows), all_ok


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------

def environment(device: torch.device) -> str:
    import mmcv
    import mmengine
    lines = [f'python {platform.python_version()}, torch {torch.__version__} '
             f'(CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}), '
             f'mmengine {mmengine.__version__}, mmcv {mmcv.__version__}']
    for pkg in ('mmpretrain', 'mmseg'):
        try:
            lines[0] += f', {pkg} {__import__(pkg).__version__}'
        except ImportError:
            lines[0] += f', {pkg} missing'
    if device.type == 'cuda':
        lines.append(f'device: {torch.cuda.get_device_name(device)} '
                     f'({torch.cuda.get_device_properties(device).total_memory / 2**30:.0f} '
                     'GiB)')
    else:
        threads = torch.get_num_threads()
        lines.append(f'device: CPU ({platform.machine()}), {threads} torch thread'
                     + ('s' if threads != 1 else ''))
    return '\n'.join('- ' + line for line in lines)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda', help="'cuda' (default), 'cuda:N' or 'cpu'")
    parser.add_argument('--quick', action='store_true',
                        help='smaller batches and inputs, fewer rounds and iterations')
    parser.add_argument('--out', help='write the markdown tables to this file')
    parser.add_argument('--skip-train', action='store_true',
                        help='skip part 3 (tools/train.py runs)')
    parser.add_argument('--parts', default='1,2,3', help='parts to run, e.g. "1" or "1,2"')
    parser.add_argument('--batch', type=int, help='part 2 batch size (default 64)')
    parser.add_argument('--rounds', type=int, help='part 2 rounds (default 4)')
    parser.add_argument('--train-iters', type=int, help='part 3 iterations (default 10)')
    parser.add_argument('--threads', type=int,
                        help="torch's CPU threads (default: torch's choice; 1 with --device cpu "
                             '--quick, whose small ops gain nothing from threads and, on a busy '
                             'machine, lose much to threads waiting on each other)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        print(f'gpu_check: bad --device {args.device!r}: {err}', file=sys.stderr)
        return 2
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            print(f'gpu_check: --device {args.device} needs a CUDA device, but no CUDA device is '
                  f'available here (torch {torch.__version__}, built for CUDA '
                  f'{torch.version.cuda}; torch.cuda.is_available() is False). Run it on a GPU '
                  'machine, or use --device cpu for the CPU self-check.', file=sys.stderr)
            return 2
        if device.index is not None and device.index >= torch.cuda.device_count():
            print(f'gpu_check: --device {args.device}: only {torch.cuda.device_count()} CUDA '
                  'device(s) here', file=sys.stderr)
            return 2
        if device.index is None:
            device = torch.device('cuda', torch.cuda.current_device())
        torch.cuda.set_device(device)
    elif device.type != 'cpu':
        print(f'gpu_check: --device must be cuda, cuda:N or cpu, not {args.device!r}',
              file=sys.stderr)
        return 2
    parts = {p.strip() for p in args.parts.split(',')}
    if args.skip_train:
        parts.discard('3')
    quick, gpu = args.quick, device.type == 'cuda'
    threads = args.threads or (1 if quick and not gpu else None)
    if threads:
        torch.set_num_threads(threads)
    # part 1: batch, side; part 2: batch, side, rounds, iterations, warm-up; part 3: iterations
    p1 = (4, 224) if gpu or not quick else (2, 96)
    if gpu:
        p2 = (32, 224, 2, 3, 2) if quick else (64, 224, 4, 5, 2)
    else:
        p2 = (2, 64, 1, 1, 1) if quick else (64, 224, 4, 5, 2)
        from visattn_mm.apis.cpu import keep_freed_cpu_memory
        keep_freed_cpu_memory()  # as tools/train.py does on the CPU (see its docstring)
    p2 = (args.batch or p2[0], p2[1], args.rounds or p2[2], p2[3], p2[4])
    iters = args.train_iters or (4 if quick else 10)

    start = time.perf_counter()
    header = f'## tools/gpu_check.py --device {device}{" --quick" if quick else ""}\n\n' + \
        environment(device)
    log(header + '\n')
    sections, results = [header], {}
    for part, label, run in (
            ('1', 'numerics', lambda: check_numerics(device, *p1)),
            ('2', 'speed', lambda: time_classifiers(device, *p2)),
            ('3', 'training', lambda: train_runs(device, iters, timeout=420))):
        if part not in parts:
            continue
        t0 = time.perf_counter()
        log(f'part {part} ({label}) ...')
        try:
            table, ok = run()
        except Exception as err:  # noqa: BLE001  (a part that could not run at all)
            traceback.print_exc()
            table, ok = f'### {part}. {label}: FAILED to run: {err!r}', False
        results[label] = ok
        table += f'\n\n({label}: {time.perf_counter() - t0:.0f} s)'
        sections.append(table)
        log('\n' + table + '\n')
    summary = (f'**{"PASS" if all(results.values()) else "FAIL"}** ('
               + ', '.join(f'{k}: {"pass" if v else "FAIL"}' for k, v in results.items())
               + f'; {time.perf_counter() - start:.0f} s in all)')
    sections.append(summary)
    log(summary)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n\n'.join(sections) + '\n')
        log(f'tables written to {args.out}')
    return 0 if all(results.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
