"""Forward throughput and peak memory of backbones, side by side, on one machine.

    python tools/benchmark.py                                  # the PSLT and FCViT tables
    python tools/benchmark.py --models pslt-base r50 --sizes 224x224x32 --device cuda

Each (model, size) runs in a fresh subprocess, so the peak memory is that model's alone: on CUDA
``torch.cuda.max_memory_allocated``; on the CPU the peak resident set size of the process minus
that of the same process before the model was built. Eval mode, no grad, fp32, after warm-up.
Sizes are HxWxBATCH.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

# name -> (registry scope, backbone config)
MODELS = {
    'pslt-base': ('visattn_mm', dict(type='visattn_mm.PSLT', arch='base', out_indices=(0, 1, 2, 3))),
    'pslt-tiny': ('visattn_mm', dict(type='visattn_mm.PSLT', arch='tiny', out_indices=(0, 1, 2, 3))),
    'fcvit-b12': ('visattn_mm', dict(type='visattn_mm.FCViT', arch='b12', out_indices=(0, 1, 2, 3))),
    'fcvit-b24': ('visattn_mm', dict(type='visattn_mm.FCViT', arch='b24', out_indices=(0, 1, 2, 3))),
    'mobilenetv2': ('mmpretrain', dict(type='MobileNetV2', widen_factor=1.0, out_indices=(7, ))),
    'r18': ('mmdet', dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3))),
    'r50': ('mmdet', dict(type='ResNet', depth=50, out_indices=(0, 1, 2, 3))),
    'convnext-t': ('mmpretrain', dict(type='ConvNeXt', arch='tiny', out_indices=(0, 1, 2, 3))),
    'poolformer-s12': ('mmpretrain', dict(type='PoolFormer', arch='s12', out_indices=(0, 2, 4, 6))),
    'poolformer-s24': ('mmpretrain', dict(type='PoolFormer', arch='s24', out_indices=(0, 2, 4, 6))),
}
TABLES = {
    'pslt': ['pslt-base', 'mobilenetv2', 'r18', 'r50'],
    'fcvit': ['fcvit-b12', 'fcvit-b24', 'r50', 'convnext-t', 'poolformer-s12', 'poolformer-s24'],
}
SIZES = ['224x224x32', '800x1333x1']


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(name: str, size: str, device: str, seconds: float) -> dict:
    """Run in the child process: build, warm up, time, report."""
    import torch

    import visattn_mm  # noqa: F401
    scope, cfg = MODELS[name]
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(scope if scope != 'visattn_mm' else 'mmdet')
    h, w, batch = (int(v) for v in size.split('x'))
    base_rss = _peak_rss_mb()
    model = registry.build(cfg).to(device)
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
        peak = _peak_rss_mb() - base_rss
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
    parser.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(*args.child, args.device, args.seconds)))
        return

    models = args.models or list(dict.fromkeys(TABLES['pslt'] + TABLES['fcvit']))
    rows = []
    print(f'| model | input HxWxB | params (backbone) | images/s | ms/batch | peak mem (MiB) |')
    print('|---|---|---:|---:|---:|---:|')
    for size in args.sizes:
        for name in models:
            cmd = [sys.executable, __file__, '--child', name, size, '--device', args.device,
                   '--seconds', str(args.seconds)]
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
