"""Helpers for tests and demos: tiny datasets in the real on-disk formats
(:mod:`~visattn_mm.testing.mini_datasets`), short-run variants of the shipped configs
(:mod:`~visattn_mm.testing.mini_config`) and the parts of the GPU check
(:mod:`~visattn_mm.testing.gpu_check`). ``tools/mini_datasets.py``, ``tools/mini_config.py`` and
``tools/gpu_check.py`` are their command lines.

The submodules are imported on use (``from visattn_mm.testing.mini_datasets import make_coco``):
the dataset makers need no mmengine, the config helper no pycocotools.
"""
