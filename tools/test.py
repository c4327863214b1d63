#!/usr/bin/env python
"""Evaluate a checkpoint with the config's toolbox (``default_scope``: mmdet, mmseg or
mmpretrain).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]
    bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [options]

The logic is :mod:`visattn_mm.apis.launch` (``main_test``).
"""
from visattn_mm.apis.launch import main_test

if __name__ == '__main__':
    main_test()
