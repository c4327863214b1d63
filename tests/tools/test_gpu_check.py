"""tools/gpu_check.py (docs/gpu.md) where there is no GPU: its CPU self-check runs end to end, and
asked for CUDA on a machine without it, it stops with a message instead of a traceback.

Both run the script as a user does, in a subprocess. The CPU run (parts 1 and 2 at the --quick
sizes, the CPU compared with itself, one torch thread) took 34 s of CPU time, 88-116 s of wall
time on a busy shared 2-core machine, so it is marked ``e2e``.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest

from visattn_mm.testing.gpu_check import ANCHORS, BACKBONES, CLASSIFIER_CONFIGS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'gpu_check.py')


def _run(*args: str, timeout: int, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, **env))


@pytest.mark.e2e
def test_cpu_quick_run_passes_and_prints_the_tables(tmp_path):
    out = tmp_path / 'tables.md'
    proc = _run('--device', 'cpu', '--quick', '--skip-train', '--out', str(out), timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-8000:]
    stdout = proc.stdout
    assert '### 1. Numerics' in stdout and '### 2. Speed' in stdout, stdout[-4000:]
    assert '### 3.' not in stdout  # --skip-train
    assert '**PASS**' in stdout
    # part 1: every backbone, fp32 (the CPU against itself) and bf16; no fp16 on the CPU
    for name in BACKBONES:
        for precision in ('fp32', 'bf16'):
            assert f'| {name} | {precision} |' in stdout, (name, precision)
        assert f'| {name} | fp16 |' not in stdout
    # the CPU against itself in fp32: the same numbers exactly
    for line in stdout.splitlines():
        if line.startswith('| ') and ' | fp32 | ' in line and line.endswith('| pass |'):
            assert line.split(' | ')[2:5] == ['0.00e+00'] * 3, line
    # part 2: every classifier and both anchors, in both layouts and both precisions
    for name in list(ANCHORS) + list(CLASSIFIER_CONFIGS):
        for layout in ('NCHW', 'channels-last'):
            for precision in ('fp32', 'bf16'):
                assert f'| {name} | {layout} | {precision} |' in stdout, (name, layout, precision)
    assert 'FAIL' not in stdout
    # --out has the same tables
    written = out.read_text()
    assert '### 1. Numerics' in written and '### 2. Speed' in written and '**PASS**' in written


def test_cuda_without_a_gpu_exits_with_a_message():
    # CUDA_VISIBLE_DEVICES='' hides any GPU, so this holds on a GPU machine too
    proc = _run('--device', 'cuda', timeout=120, CUDA_VISIBLE_DEVICES='')
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert 'no CUDA device' in proc.stderr, proc.stderr
    assert 'Traceback' not in proc.stdout + proc.stderr
