#!/usr/bin/env python
"""Train with the config's toolbox (``default_scope``: mmdet, mmseg or mmpretrain).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CHECKPOINT]] [--amp]
        [--auto-scale-lr] [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]
    bash tools/dist_train.sh CONFIG NPROC [options]     # NPROC processes (GPUs, or CPU + gloo)

The logic is :mod:`visattn_mm.apis.launch` (``main_train``).
"""
from visattn_mm.apis.launch import main_train

if __name__ == '__main__':
    main_train()
