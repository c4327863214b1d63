"""The mini ImageNet set (mmpretrain ``ImageNet`` + ``Accuracy``)."""
import os
import os.path as osp
from typing import Tuple, Union

import numpy as np

from ._draw import (Color, _background, _finish, _jitter, _rng, _save_jpeg, _size_pair,
                    polygon_mask, shape_polygon)


# ImageNet-1k: the first five classes in the standard (sorted-wnid) order, so their labels
# 0..4 are at the same time the real 1000-class indices and a contiguous 5-class label space.
IMAGENET_MINI_WNIDS: Tuple[str, ...] = (
    'n01440764', 'n01443537', 'n01484850', 'n01491361', 'n01494475')
IMAGENET_MINI_CLASSES: Tuple[str, ...] = (  # == mmpretrain IMAGENET_CATEGORIES[:5]
    'tench, Tinca tinca', 'goldfish, Carassius auratus',
    'great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias',
    'tiger shark, Galeocerdo cuvieri', 'hammerhead, hammerhead shark')
IMAGENET_MINI_SPEC: Tuple[Tuple[str, Color], ...] = (
    ('circle', (40, 165, 60)), ('triangle', (245, 140, 20)), ('square', (50, 80, 205)),
    ('star', (210, 35, 40)), ('cross', (150, 50, 175)))


def make_imagenet(root: str, seed: int = 0, num_train: int = 8, num_val: int = 4,
                  size: Union[int, Tuple[int, int]] = 96) -> str:
    """Write an ImageNet-1k-format classification set of five classes.

    Layout: ``train/<wnid>/<wnid>_<n>.JPEG``, flat ``val/ILSVRC2012_val_%08d.JPEG`` and
    ``meta/train.txt`` / ``meta/val.txt`` with ``<path relative to the split folder> <label>``
    lines, as mmpretrain's ImageNet reads them. The classes are the first five ImageNet-1k
    classes (:data:`IMAGENET_MINI_WNIDS`), so labels 0..4 are their real 1000-class indices.

    Config (mmpretrain): ``ImageNet(data_root=<root>, split='train')`` (``'val'`` alike; it
    finds ``meta/<split>.txt`` and the ``<split>/`` folder), ``Accuracy(topk=(1,))``. Either
    keep the 1000 default classes (``num_classes=1000``) or set
    ``metainfo=dict(classes=IMAGENET_MINI_CLASSES)`` and ``num_classes=5``. Note: top-5
    accuracy is trivially 100 with five classes.

    Args:
        root: Output folder (created).
        seed: Random seed.
        num_train: Training images per class.
        num_val: Validation images per class.
        size: Longest image side (jittered per image) or an exact (height, width).

    Returns:
        ``root``.
    """
    rng = _rng(seed, 'imagenet')

    def draw(label: int) -> np.ndarray:
        h, w = _size_pair(size, rng)
        img = _background(rng, h, w)
        shape, color = IMAGENET_MINI_SPEC[label]
        s = rng.uniform(0.35, 0.7) * min(h, w)
        cx, cy = rng.uniform(s / 2, w - s / 2), rng.uniform(s / 2, h - s / 2)
        poly = shape_polygon(shape, cx, cy, s, angle=rng.uniform(-0.4, 0.4))
        img[polygon_mask(poly, h, w) > 0] = _jitter(color, rng, 18)
        return _finish(img, rng, 8.0)

    train_lines, val_lines = [], []
    for label, wnid in enumerate(IMAGENET_MINI_WNIDS):
        for n in sorted(rng.choice(np.arange(1, 20000), num_train, replace=False).tolist()):
            rel = f'{wnid}/{wnid}_{n}.JPEG'
            _save_jpeg(draw(label), osp.join(root, 'train', rel))
            train_lines.append(f'{rel} {label}')
    val_labels = np.repeat(np.arange(len(IMAGENET_MINI_WNIDS)), num_val)
    rng.shuffle(val_labels)
    for i, label in enumerate(val_labels.tolist()):
        rel = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
        _save_jpeg(draw(label), osp.join(root, 'val', rel))
        val_lines.append(f'{rel} {label}')
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for name, lines in (('train', train_lines), ('val', val_lines)):
        with open(osp.join(root, 'meta', f'{name}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return root
