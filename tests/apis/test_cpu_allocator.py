"""keep_freed_cpu_memory: large CPU tensors reuse freed memory instead of fresh, faulted pages."""
import subprocess
import sys

import pytest

PROBE = '''
import resource, sys, torch
from visattn_mm.apis.cpu import keep_freed_cpu_memory
if sys.argv[1] == 'keep':
    assert keep_freed_cpu_memory()
torch.empty(2 ** 24).fill_(1)  # 64 MiB, once to warm up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    torch.empty(2 ** 24).fill_(1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
'''


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc')
def test_large_blocks_are_reused_without_page_faults():
    faults = {mode: int(subprocess.check_output([sys.executable, '-c', PROBE, mode],
                                                text=True).split()[-1])
              for mode in ('keep', 'default')}
    pages = 5 * 2 ** 26 // 4096  # five 64 MiB tensors
    assert faults['default'] > 0.9 * pages, faults  # glibc maps every one of them afresh
    # at most two of the five afresh (torch 2.13: one; torch 2.1.2's allocator: one or two
    # from run to run) where glibc's default maps all five
    assert faults['keep'] <= 0.45 * faults['default'], faults


def test_switch_off(monkeypatch):
    from visattn_mm.apis.cpu import keep_freed_cpu_memory
    monkeypatch.setenv('VISATTN_KEEP_CPU_MEMORY', '0')
    assert keep_freed_cpu_memory() is False
