"""Running the toolboxes' Runners from this package's command lines (``tools/train.py``,
``tools/test.py``, ``tools/dist_*.sh``).

- :mod:`visattn_mm.apis.config`: config loading, toolbox choice (``default_scope``), mixed
  precision per device, resuming and the checkpoint check.
- :mod:`visattn_mm.apis.distributed`: multi-process set-up (gloo on CPU-only machines).
- :mod:`visattn_mm.apis.launch`: the command-line options and the Runner (the steps above are
  importable from it too).
- :mod:`visattn_mm.apis.cpu`: what mmengine 0.10.7 lacks for CPU runs: a DDP wrapper for CPU
  modules and bfloat16 autocast training.

Nothing is imported here: ``import visattn_mm`` does not import this subpackage, and importing
it starts no process group.
"""
