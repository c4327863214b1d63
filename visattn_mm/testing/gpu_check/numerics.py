"""Part 1 of the GPU check: every backbone family's outputs and gradients on the device, in
fp32 and under autocast, against the CPU fp32 result of the same weights and input."""
import contextlib
import copy
import math
import time
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .common import autocast, init_quietly, log, md_table

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


def _vit(name: str, type_: str) -> Dict[str, dict]:
    """A ViT twice: with its patch-token maps and with the cls token alone."""
    base = dict(type=type_, arch='tiny', drop_path_rate=0.)
    return {f'{name} featmap': dict(base, out_type='featmap', out_indices=(5, 11)),
            f'{name} cls': dict(base, out_type='cls_token')}


def _four_stages(type_: str) -> dict:
    """A hierarchical backbone with the maps of all four stages."""
    return dict(type=type_, arch='tiny', drop_path_rate=0., out_indices=(0, 1, 2, 3))


# part 1: name -> backbone config (visattn_mm registry). Small archs, no drop path or dropout
# (the CPU and the GPU draw different random numbers), train mode: BatchNorm on batch statistics.
# The ViTs are checked with their patch-token maps (the dense-prediction path) and with the cls
# token (the classifier path, where the last layer computes the cls token's row only).
BACKBONES: Dict[str, dict] = {
    **_vit('BViT-Ti', 'visattn_mm.BViT'),
    'BroadSwin-T': _four_stages('visattn_mm.BroadSwinTransformer'),
    'BroadT2T-ViT-14': dict(type='visattn_mm.BroadT2TViT', embed_dims=384, num_layers=14,
                            t2t_cfg=dict(token_dims=64, use_performer=False),
                            layer_cfgs=dict(num_heads=6, feedforward_channels=3 * 384),
                            drop_path_rate=0., out_type='featmap', out_indices=(6, 13)),
    **_vit('DenseDeiT-Ti', 'visattn_mm.DenseDeiT'),
    'DenseSwin-T': _four_stages('visattn_mm.DenseSwinTransformer'),
    'PSLT-tiny': _four_stages('visattn_mm.PSLT'),
    'FCViT-tiny': _four_stages('visattn_mm.FCViT'),
}


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
