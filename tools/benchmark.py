"""Forward throughput and peak memory of backbones, side by side, on one machine.

    python tools/benchmark.py                                  # the PSLT and FCViT tables
    python tools/benchmark.py --models pslt-base r50 --sizes 224x224x32 --device cuda
    python tools/benchmark.py --interleave --models deit-ti bvit-ti dense-deit-ti \
        --sizes 224x224x16                                     # ratios to the first model

On the CPU the benchmark (like ``tools/train.py`` and ``tools/test.py``) first lets glibc's malloc
keep freed memory for reuse (``--malloc default`` does not): otherwise every tensor above 32 MiB
is a fresh mmap that the kernel zero-fills page by page, a third of a PSLT training step.

``--interleave`` builds every model in one process and times them in turns (A B C A B C ...),
inference and a training step (forward + backward), and reports the median images/s of the
rounds and the ratio to the first model (the anchor): on a shared, drifting machine ratios
measured this way hold where lone times do not. ``--amp bf16`` (or ``fp16``) times every model a
second time, in the same rounds, under ``torch.autocast`` of that dtype (rows ``name@bf16``; the
ratios stay to the first model in fp32), e.g. on a CPU with AMX or on a GPU.

Each (model, size) runs in a fresh subprocess, so the peak memory is that model's alone: on CUDA
``torch.cuda.max_memory_allocated``; on the CPU the peak resident set size of the process minus
that of the same process before the model was built. Eval mode, no grad, fp32, after warm-up.
Sizes are HxWxBATCH.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import Optional

# name -> (registry scope, backbone config)
MODELS = {
    'pslt-base': ('visattn_mm', dict(type='visattn_mm.PSLT', arch='base', out_indices=(0, 1, 2, 3))),
    'pslt-tiny': ('visattn_mm', dict(type='visattn_mm.PSLT', arch='tiny', out_indices=(0, 1, 2, 3))),
    'fcvit-b12': ('visattn_mm', dict(type='visattn_mm.FCViT', arch='b12', out_indices=(0, 1, 2, 3))),
    # the NCHW forms (channels_last=False), as before the channels-last default
    'pslt-base-nchw': ('visattn_mm', dict(type='visattn_mm.PSLT', arch='base',
                                          out_indices=(0, 1, 2, 3), channels_last=False)),
    'fcvit-b12-nchw': ('visattn_mm', dict(type='visattn_mm.FCViT', arch='b12',
                                          out_indices=(0, 1, 2, 3), channels_last=False)),
    'fcvit-b24': ('visattn_mm', dict(type='visattn_mm.FCViT', arch='b24', out_indices=(0, 1, 2, 3))),
    'mobilenetv2': ('mmpretrain', dict(type='MobileNetV2', widen_factor=1.0, out_indices=(7, ))),
    'r18': ('mmdet', dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3))),
    'r50': ('mmdet', dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3))),
    'convnext-t': ('mmpretrain', dict(type='ConvNeXt', arch='tiny', out_indices=(0, 1, 2, 3))),
    'poolformer-s12': ('mmpretrain', dict(type='PoolFormer', arch='s12', out_indices=(0, 2, 4, 6))),
    'poolformer-s24': ('mmpretrain', dict(type='PoolFormer', arch='s24', out_indices=(0, 2, 4, 6))),
    # plain ViTs: the last layer's map (dense prediction) / cls token
    'deit-ti': ('mmpretrain', dict(type='VisionTransformer', arch='deit-tiny', out_type='featmap',
                                   qkv_bias=False)),
    'deit-s': ('mmpretrain', dict(type='VisionTransformer', arch='deit-small', out_type='featmap',
                                  qkv_bias=False)),
    'bvit-ti': ('visattn_mm', dict(type='visattn_mm.BViT', arch='tiny', out_type='featmap')),
    'bvit-s': ('visattn_mm', dict(type='visattn_mm.BViT', arch='small', out_type='featmap')),
    'dense-deit-ti': ('visattn_mm', dict(type='visattn_mm.DenseDeiT', arch='tiny',
                                         out_type='featmap')),
    'dense-deit-ti-3h': ('visattn_mm', dict(type='visattn_mm.DenseDeiT', arch='tiny',
                                            num_heads=3, out_type='featmap')),
    'dense-deit-s': ('visattn_mm', dict(type='visattn_mm.DenseDeiT', arch='small',
                                        out_type='featmap')),
    'swin-t': ('mmpretrain', dict(type='SwinTransformer', arch='tiny', out_indices=(0, 1, 2, 3))),
    'broad-swin-t': ('visattn_mm', dict(type='visattn_mm.BroadSwinTransformer', arch='tiny',
                                        out_indices=(0, 1, 2, 3))),
    'dense-swin-t': ('visattn_mm', dict(type='visattn_mm.DenseSwinTransformer', arch='tiny',
                                        out_indices=(0, 1, 2, 3))),
}
TABLES = {
    'pslt': ['pslt-base', 'mobilenetv2', 'r18', 'r50'],
    'fcvit': ['fcvit-b12', 'fcvit-b24', 'r50', 'convnext-t', 'poolformer-s12', 'poolformer-s24'],
    'bvit': ['deit-ti', 'bvit-ti', 'deit-s', 'bvit-s', 'swin-t', 'broad-swin-t'],
    'dense': ['deit-ti', 'dense-deit-ti', 'dense-deit-ti-3h', 'deit-s', 'dense-deit-s', 'swin-t',
              'dense-swin-t'],
}
SIZES = ['224x224x32', '800x1333x1']


def build(name: str, device: str):
    import importlib

    import visattn_mm  # noqa: F401
    from mmengine.registry import init_default_scope
    scope, cfg = MODELS[name]
    init_default_scope(scope if scope != 'visattn_mm' else 'mmdet')
    return importlib.import_module(f'{scope}.registry').MODELS.build(cfg).to(device)


AMP_DTYPES = {'bf16': 'bfloat16', 'fp16': 'float16'}


def interleave(names: list, size: str, device: str, rounds: int,
               amp: Optional[str] = None) -> list:
    """Median images/s over ``rounds`` turns of every model, eval and a training step; with
    ``amp`` ('bf16' or 'fp16') every model also under autocast, as a row ``name@amp``."""
    import statistics

    import torch
    h, w, batch = (int(v) for v in size.split('x'))
    models = {name: build(name, device) for name in names}
    x = torch.randn(batch, 3, h, w, device=device)
    from visattn_mm.utils.benchmarking import timed_step
    # (row name, model name, autocast dtype)
    runs = [(name, name, None) for name in names]
    if amp:
        runs += [(f'{name}@{amp}', name, getattr(torch, AMP_DTYPES[amp])) for name in names]

    def step(model, train: bool, dtype) -> float:
        return timed_step(model, x, train, lambda outs: sum(o.float().mean() for o in outs),
                          amp=dtype)

    times = {(row, t): [] for row, _, _ in runs for t in (False, True)}
    for r in range(rounds + 1):  # round 0 warms up
        for row, name, dtype in runs:
            for train in (False, True):
                elapsed = step(models[name], train, dtype)
                if r:
                    times[row, train].append(elapsed)
    rows = []
    for name, model_name, _ in runs:
        row = dict(model=name, size=size, device=device,
                   params=sum(p.numel() for p in models[model_name].parameters()))
        for train, key in ((False, 'eval'), (True, 'train')):
            row[f'{key}_imgs_per_s'] = batch / statistics.median(times[name, train])
            row[f'{key}_ratio'] = row[f'{key}_imgs_per_s'] / (
                batch / statistics.median(times[names[0], train]))
        rows.append(row)
    return rows


def measure(name: str, size: str, device: str, seconds: float) -> dict:
    """Run in the child process: build, warm up, time, report."""
    import torch

    from visattn_mm.utils.benchmarking import peak_rss_growth_mib, reset_peak_rss
    h, w, batch = (int(v) for v in size.split('x'))
    base_rss = reset_peak_rss()
    model = build(name, device)
    model.eval()  # (some backbones' train() returns None, so no chaining)
    params = sum(p.numel() for p in model.parameters())
    x = torch.randn(batch, 3, h, w, device=device)
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        sync()
        if device.startswith('cuda'):
            torch.cuda.reset_peak_memory_stats()
        runs, start = 0, time.perf_counter()
        while True:
            model(x)
            runs += 1
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and runs >= 3:
                break
    if device.startswith('cuda'):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = peak_rss_growth_mib(base_rss)
    return dict(model=name, size=size, params=params, imgs_per_s=runs * batch / elapsed,
                ms_per_batch=1000 * elapsed / runs, peak_mem_mb=peak, device=device)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--models', nargs='+', choices=sorted(MODELS),
                        help='default: the PSLT and FCViT comparison tables')
    parser.add_argument('--sizes', nargs='+', default=SIZES)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seconds', type=float, default=5.0, help='timing per measurement')
    parser.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--json', help='also write the rows here')
    parser.add_argument('--interleave', action='store_true',
                        help='all models in one process, in turns; ratios to the first model')
    parser.add_argument('--rounds', type=int, default=5, help='turns per model (--interleave)')
    parser.add_argument('--table', choices=sorted(TABLES), help='the models of one table')
    parser.add_argument('--malloc', choices=['keep', 'default'], default='keep',
                        help='CPU: keep: glibc malloc keeps freed memory for reuse, as the '
                        'tools set it (visattn_mm.apis.cpu.keep_freed_cpu_memory); default: '
                        "glibc's own settings (a fresh mmap per large tensor)")
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES),
                        help='--interleave: also every model under torch.autocast of this dtype')
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.amp and not args.interleave:
        parser.error('--amp needs --interleave')
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.malloc == 'keep' and args.device == 'cpu':
        from visattn_mm.apis.cpu import keep_freed_cpu_memory
        keep_freed_cpu_memory()
    if args.table:
        args.models = TABLES[args.table]
    if args.child:
        print(json.dumps(measure(*args.child, args.device, args.seconds)))
        return
    from visattn_mm.utils.benchmarking import describe_device
    print(f'{args.device}: {describe_device(args.device)}\n')
    if args.interleave:
        models = args.models or TABLES['bvit']
        print(f'| model | input HxWxB | params | eval img/s | eval ratio | train img/s | '
              f'train ratio |')
        print('|---|---|---:|---:|---:|---:|---:|')
        rows = []
        for size in args.sizes:
            for row in interleave(models, size, args.device, args.rounds, args.amp):
                rows.append(row)
                print(f"| {row['model']} | {size} | {row['params']:,} | "
                      f"{row['eval_imgs_per_s']:.2f} | {row['eval_ratio']:.2f} | "
                      f"{row['train_imgs_per_s']:.2f} | {row['train_ratio']:.2f} |", flush=True)
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(rows, f, indent=1)
        return

    models = args.models or list(dict.fromkeys(TABLES['pslt'] + TABLES['fcvit']))
    rows = []
    print(f'| model | input HxWxB | params (backbone) | images/s | ms/batch | peak mem (MiB) |')
    print('|---|---|---:|---:|---:|---:|')
    for size in args.sizes:
        for name in models:
            cmd = [sys.executable, __file__, '--child', name, size, '--device', args.device,
                   '--seconds', str(args.seconds), '--malloc', args.malloc]
            if args.threads:
                cmd += ['--threads', str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(f'| {name} | {size} | failed: {out.stderr.strip().splitlines()[-1]} |||')
                continue
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"| {name} | {size} | {row['params']:,} | {row['imgs_per_s']:.2f} | "
                  f"{row['ms_per_batch']:.1f} | {row['peak_mem_mb']:.0f} |", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
