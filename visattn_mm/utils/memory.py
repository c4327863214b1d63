"""The process's resident memory, for the benchmark tools' peak-memory columns (Linux).

``ru_maxrss`` is not used: a child process starts with its parent's, so a model measured in a
fresh child after its parent has held others would read the parent's peak. ``VmHWM`` belongs to
the process's own address space and can be reset (``/proc/self/clear_refs``, Linux >= 4.0).
"""
import resource
from typing import Optional


def _status_mib(key: str) -> Optional[float]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """The peak resident set of this process (since the last :func:`reset_peak_rss`), MiB."""
    peak = _status_mib('VmHWM')
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak_rss() -> float:
    """Reset the peak resident set to the current one and return that, MiB (where the reset is
    not possible: the peak so far, so that ``peak_rss_mib() - reset_peak_rss()`` is the growth
    above it)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return _status_mib('VmRSS') or 0.
    except OSError:
        return peak_rss_mib()
