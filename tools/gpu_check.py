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
import os.path as osp
import platform
import sys
import time
import traceback
from typing import Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # the checkout's visattn_mm, whatever is installed
    sys.path.insert(0, ROOT)

import torch  # noqa: E402


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
    # The parts live in the package (visattn_mm/testing/gpu_check/); imported only now, so a
    # missing device is reported before the package loads. configs/ and tools/train.py are
    # still found beside this script (ROOT).
    from visattn_mm.testing.gpu_check import check_numerics, time_classifiers, train_runs
    from visattn_mm.testing.gpu_check.common import log

    start = time.perf_counter()
    header = f'## tools/gpu_check.py --device {device}{" --quick" if quick else ""}\n\n' + \
        environment(device)
    log(header + '\n')
    sections, results = [header], {}
    for part, label, run in (
            ('1', 'numerics', lambda: check_numerics(device, *p1)),
            ('2', 'speed', lambda: time_classifiers(device, *p2, checkout=ROOT)),
            ('3', 'training', lambda: train_runs(device, iters, timeout=420,
                                                checkout=ROOT))):
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
