"""Generate tiny, learnable datasets in the exact on-disk formats of the real ones.

Each maker writes a dataset that the real OpenMMLab dataset class reads unchanged and the real
metric scores: COCO instances (mmdet ``CocoDataset`` + ``CocoMetric``), ADE20K scene parsing
(mmseg ``ADE20KDataset`` + ``IoUMetric``), ADE20K instances (mmdet ``ADE20KInstanceDataset`` +
``CocoMetric``), ImageNet (mmpretrain ``ImageNet`` + ``Accuracy``) and Market-1501 (through
:func:`visattn_mm.datasets.market1501.convert_market1501` into mmdet ``ReIDDataset``, scored by
``visattn_mm.Market1501Metric``).

The content is synthetic but learnable: every category is one shape in one colour (with a little
jitter) on a plain, noisy background, so a small network separates them within a few hundred
iterations and a short training run shows a real, non-zero metric (checked on the CPU: a
ResNet-18 from scratch reaches 90 % top-1 on the ImageNet set, 40 images per class at 64 px,
after 150 iterations, and 0.79 Market mAP after 60 triplet iterations). Generation is seeded
and deterministic: the same seed and arguments give byte-identical files.

One module per format (``coco``, ``ade20k``, ``imagenet``, ``market``; ``_draw`` holds the
shapes and file helpers they share). The makers draw with numpy, Pillow and pycocotools only
(importing this module still imports the ``visattn_mm`` package, and so torch).

Python: ``make_coco(root, ...)`` etc. write one set and nothing else; :func:`make_dataset` writes
a set by name (or ``'all'``) and, for Market-1501, its annotation files too. Command line
(``tools/mini_datasets.py``, a thin wrapper of :func:`make_dataset`)::

    python tools/mini_datasets.py all --out data/mini --seed 0
    python tools/mini_datasets.py coco --out data/mini --num-train 32 --num-val 8 --size 160

(``--no-convert-market`` skips the Market annotation files.)

Layout under ``--out`` (each maker also works alone on its own root)::

    coco/              train2017/ val2017/ annotations/instances_{train,val}2017.json
    ade20k/            images/{training,validation}/ADE_{train,val}_*.jpg
                       annotations/{training,validation}/ADE_{train,val}_*.png
                       ade20k_instance_{train,val}.json        (``ade20k_instance``)
    imagenet/          train/<wnid>/<wnid>_<n>.JPEG  val/ILSVRC2012_val_*.JPEG  meta/{train,val}.txt
    market1501/        bounding_box_train/ bounding_box_test/ query/   (+ meta/*.txt, converter)

What a config sets for each is in the docstring of the maker (``make_coco`` etc.).
"""
import os.path as osp
from typing import Dict, Optional

from ._draw import compressed_rle, mask_bbox, polygon_mask, shape_polygon, uncompressed_rle
from .ade20k import (ADE150_CLASSES, ADE_SPLITS, ADE_THING_CLASSES, MINI_ADE_THING_CLASSES,
                     make_ade20k, make_ade20k_instance)
from .coco import COCO_CATEGORIES, MINI_COCO_CLASSES, MINI_COCO_SPEC, make_coco
from .imagenet import IMAGENET_MINI_CLASSES, IMAGENET_MINI_SPEC, IMAGENET_MINI_WNIDS, make_imagenet
from .market import MARKET_HEIGHT, MARKET_NUM_CAMERAS, MARKET_WIDTH, make_market1501

__all__ = ['ADE150_CLASSES', 'ADE_SPLITS', 'ADE_THING_CLASSES', 'COCO_CATEGORIES',
           'IMAGENET_MINI_CLASSES', 'IMAGENET_MINI_SPEC', 'IMAGENET_MINI_WNIDS', 'MAKERS',
           'MARKET_HEIGHT', 'MARKET_NUM_CAMERAS', 'MARKET_WIDTH', 'MINI_ADE_THING_CLASSES',
           'MINI_COCO_CLASSES', 'MINI_COCO_SPEC', 'compressed_rle', 'make_ade20k',
           'make_ade20k_instance', 'make_all', 'make_coco', 'make_dataset', 'make_imagenet',
           'make_market1501', 'mask_bbox', 'polygon_mask', 'shape_polygon', 'uncompressed_rle']

MAKERS = {
    'coco': ('coco', make_coco),
    'ade20k': ('ade20k', lambda root, **kw: make_ade20k(root, instances=False, **kw)),
    'ade20k_instance': ('ade20k', make_ade20k_instance),
    'imagenet': ('imagenet', make_imagenet),
    'market1501': ('market1501', make_market1501),
}


def make_all(out: str, seed: int = 0) -> Dict[str, str]:
    """Write every dataset with default sizes under ``out``; returns name -> root."""
    roots = {}
    for name in ('coco', 'ade20k_instance', 'imagenet', 'market1501'):
        folder, maker = MAKERS[name]
        roots[folder] = maker(osp.join(out, folder), seed=seed)
    return roots


def make_dataset(name: str, out: str, seed: int = 0, num_train: Optional[int] = None,
                 num_val: Optional[int] = None, size: Optional[int] = None,
                 convert_market: bool = True) -> Dict[str, str]:
    """Write one named dataset (a key of :data:`MAKERS`) or ``'all'`` under ``out``.

    Args:
        name: ``coco``, ``ade20k``, ``ade20k_instance``, ``imagenet``, ``market1501`` or
            ``all`` (every set at its default size; the size arguments are then ignored).
        out: Parent folder; a dataset goes to ``<out>/<folder>`` (``ade20k`` and
            ``ade20k_instance`` share ``<out>/ade20k``).
        seed: Random seed.
        num_train: Training images (ImageNet: per class; Market: identities); None: default.
        num_val: Validation images (ImageNet: per class; Market: test identities).
        size: Longest image side (not for Market, whose crops are 128x64).
        convert_market: Also write the Market set's ``meta/*.txt`` annotation files
            (:func:`visattn_mm.datasets.market1501.convert_market1501`).

    Returns:
        folder -> dataset root, for every set written.
    """
    if name == 'all':
        roots = make_all(out, seed=seed)
    else:
        if name not in MAKERS:
            raise ValueError(f'unknown mini dataset {name!r}; choose from '
                             f"{sorted(MAKERS) + ['all']}")
        folder, maker = MAKERS[name]
        kwargs: dict = {'seed': seed}
        if name == 'market1501':
            if num_train is not None:
                kwargs['num_train_ids'] = num_train
            if num_val is not None:
                kwargs['num_test_ids'] = num_val
        else:
            if num_train is not None:
                kwargs['num_train'] = num_train
            if num_val is not None:
                kwargs['num_val'] = num_val
            if size is not None:
                kwargs['size'] = size
        roots = {folder: maker(osp.join(out, folder), **kwargs)}
    if convert_market and 'market1501' in roots:
        from visattn_mm.datasets.market1501 import convert_market1501
        convert_market1501(roots['market1501'])
    return roots
