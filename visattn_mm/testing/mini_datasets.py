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

The makers draw with numpy, Pillow and pycocotools only (importing this module still imports
the ``visattn_mm`` package, and so torch).

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
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

Polygon = np.ndarray  # (N, 2) float array of (x, y) vertices
Color = Tuple[int, int, int]

# --------------------------------------------------------------------------------------------
# Category tables
# --------------------------------------------------------------------------------------------

# The 80 COCO instance categories with their real (non-contiguous) ids, in the order of
# instances_*2017.json. Listing all of them, as the real file does, lets a config keep
# CocoDataset's default 80 classes; only MINI_COCO_CLASSES carry annotations.
COCO_CATEGORIES: Tuple[Tuple[int, str, str], ...] = (
    (1, 'person', 'person'), (2, 'bicycle', 'vehicle'), (3, 'car', 'vehicle'),
    (4, 'motorcycle', 'vehicle'), (5, 'airplane', 'vehicle'), (6, 'bus', 'vehicle'),
    (7, 'train', 'vehicle'), (8, 'truck', 'vehicle'), (9, 'boat', 'vehicle'),
    (10, 'traffic light', 'outdoor'), (11, 'fire hydrant', 'outdoor'),
    (13, 'stop sign', 'outdoor'), (14, 'parking meter', 'outdoor'), (15, 'bench', 'outdoor'),
    (16, 'bird', 'animal'), (17, 'cat', 'animal'), (18, 'dog', 'animal'), (19, 'horse', 'animal'),
    (20, 'sheep', 'animal'), (21, 'cow', 'animal'), (22, 'elephant', 'animal'),
    (23, 'bear', 'animal'), (24, 'zebra', 'animal'), (25, 'giraffe', 'animal'),
    (27, 'backpack', 'accessory'), (28, 'umbrella', 'accessory'), (31, 'handbag', 'accessory'),
    (32, 'tie', 'accessory'), (33, 'suitcase', 'accessory'), (34, 'frisbee', 'sports'),
    (35, 'skis', 'sports'), (36, 'snowboard', 'sports'), (37, 'sports ball', 'sports'),
    (38, 'kite', 'sports'), (39, 'baseball bat', 'sports'), (40, 'baseball glove', 'sports'),
    (41, 'skateboard', 'sports'), (42, 'surfboard', 'sports'), (43, 'tennis racket', 'sports'),
    (44, 'bottle', 'kitchen'), (46, 'wine glass', 'kitchen'), (47, 'cup', 'kitchen'),
    (48, 'fork', 'kitchen'), (49, 'knife', 'kitchen'), (50, 'spoon', 'kitchen'),
    (51, 'bowl', 'kitchen'), (52, 'banana', 'food'), (53, 'apple', 'food'),
    (54, 'sandwich', 'food'), (55, 'orange', 'food'), (56, 'broccoli', 'food'),
    (57, 'carrot', 'food'), (58, 'hot dog', 'food'), (59, 'pizza', 'food'), (60, 'donut', 'food'),
    (61, 'cake', 'food'), (62, 'chair', 'furniture'), (63, 'couch', 'furniture'),
    (64, 'potted plant', 'furniture'), (65, 'bed', 'furniture'), (67, 'dining table', 'furniture'),
    (70, 'toilet', 'furniture'), (72, 'tv', 'electronic'), (73, 'laptop', 'electronic'),
    (74, 'mouse', 'electronic'), (75, 'remote', 'electronic'), (76, 'keyboard', 'electronic'),
    (77, 'cell phone', 'electronic'), (78, 'microwave', 'appliance'), (79, 'oven', 'appliance'),
    (80, 'toaster', 'appliance'), (81, 'sink', 'appliance'), (82, 'refrigerator', 'appliance'),
    (84, 'book', 'indoor'), (85, 'clock', 'indoor'), (86, 'vase', 'indoor'),
    (87, 'scissors', 'indoor'), (88, 'teddy bear', 'indoor'), (89, 'hair drier', 'indoor'),
    (90, 'toothbrush', 'indoor'))

# The annotated COCO categories: name -> (shape, colour). Kept in ascending COCO id order,
# which is the order CocoDataset assigns labels in when a config restricts `classes` to them.
MINI_COCO_SPEC: Dict[str, Tuple[str, Color]] = {
    'stop sign': ('octagon', (215, 30, 35)),
    'sports ball': ('circle', (250, 140, 20)),
    'kite': ('diamond', (40, 175, 70)),
    'pizza': ('triangle', (235, 215, 60)),
    'tv': ('rectangle', (40, 70, 205)),
}
MINI_COCO_CLASSES: Tuple[str, ...] = tuple(MINI_COCO_SPEC)

# ADE20K SceneParsing's 150 classes; label value k in an annotation PNG is ADE150_CLASSES[k-1]
# and 0 is "other" (ignored with reduce_zero_label=True). Short names, as in mmseg.
ADE150_CLASSES: Tuple[str, ...] = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass',
    'cabinet', 'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain',
    'chair', 'car', 'water', 'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug',
    'field', 'armchair', 'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp', 'bathtub',
    'railing', 'cushion', 'base', 'box', 'column', 'signboard', 'chest of drawers', 'counter',
    'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path', 'stairs',
    'runway', 'case', 'pool table', 'pillow', 'screen door', 'stairway', 'river', 'bridge',
    'bookcase', 'blind', 'coffee table', 'toilet', 'flower', 'book', 'hill', 'bench',
    'countertop', 'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat', 'bar',
    'arcade machine', 'hovel', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier',
    'awning', 'streetlight', 'booth', 'television receiver', 'airplane', 'dirt track',
    'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle', 'buffet',
    'poster', 'stage', 'van', 'ship', 'fountain', 'conveyer belt', 'canopy', 'washer',
    'plaything', 'swimming pool', 'stool', 'barrel', 'basket', 'waterfall', 'tent', 'bag',
    'minibike', 'cradle', 'oven', 'ball', 'food', 'step', 'tank', 'trade name', 'microwave',
    'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen', 'blanket', 'sculpture', 'hood',
    'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan', 'pier', 'crt screen', 'plate',
    'monitor', 'bulletin board', 'shower', 'radiator', 'glass', 'clock', 'flag')

# The 100 "thing" classes of ADE20K's instance task (mmdet ADE20KInstanceDataset). In
# ade20k_instance_*.json a category's id is its 0-based index in ADE150_CLASSES.
ADE_THING_CLASSES: Tuple[str, ...] = (
    'bed', 'windowpane', 'cabinet', 'person', 'door', 'table', 'curtain', 'chair', 'car',
    'painting', 'sofa', 'shelf', 'mirror', 'armchair', 'seat', 'fence', 'desk', 'wardrobe',
    'lamp', 'bathtub', 'railing', 'cushion', 'box', 'column', 'signboard', 'chest of drawers',
    'counter', 'sink', 'fireplace', 'refrigerator', 'stairs', 'case', 'pool table', 'pillow',
    'screen door', 'bookcase', 'coffee table', 'toilet', 'flower', 'book', 'bench',
    'countertop', 'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat',
    'arcade machine', 'bus', 'towel', 'light', 'truck', 'chandelier', 'awning', 'streetlight',
    'booth', 'television receiver', 'airplane', 'apparel', 'pole', 'bannister', 'ottoman',
    'bottle', 'van', 'ship', 'fountain', 'washer', 'plaything', 'stool', 'barrel', 'basket',
    'bag', 'minibike', 'oven', 'ball', 'food', 'step', 'trade name', 'microwave', 'pot',
    'animal', 'bicycle', 'dishwasher', 'screen', 'sculpture', 'hood', 'sconce', 'vase',
    'traffic light', 'tray', 'ashcan', 'fan', 'plate', 'monitor', 'bulletin board', 'radiator',
    'glass', 'clock', 'flag')

# The ADE20K classes the mini scenes use, with colours.
ADE_STUFF_COLORS: Dict[str, Color] = {
    'wall': (205, 195, 175), 'building': (140, 130, 125), 'sky': (130, 185, 235),
    'floor': (170, 130, 90), 'road': (85, 85, 90), 'grass': (70, 150, 55)}
ADE_THING_SPEC: Dict[str, Tuple[str, Color]] = {
    'person': ('person', (150, 40, 160)),
    'car': ('car', (205, 30, 30)),
    'box': ('square', (150, 95, 40)),
    'ball': ('circle', (245, 225, 60)),
}
MINI_ADE_THING_CLASSES: Tuple[str, ...] = tuple(ADE_THING_SPEC)

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

# Market-1501 appearance vocabulary: an identity is (shirt colour, trousers colour, pattern).
_SHIRT_COLORS: Tuple[Color, ...] = (
    (220, 30, 30), (30, 150, 40), (35, 70, 210), (240, 210, 40), (240, 240, 240),
    (25, 25, 25), (160, 40, 170), (250, 130, 20))
_TROUSER_COLORS: Tuple[Color, ...] = (
    (30, 30, 40), (60, 90, 170), (150, 150, 150), (130, 90, 50), (230, 225, 205))
_PATTERNS: Tuple[str, ...] = ('plain', 'stripes', 'split')
_SKIN: Color = (225, 185, 150)

_DATASET_KEYS = {'coco': 1, 'ade20k': 2, 'imagenet': 3, 'market1501': 4}

# --------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------


def _rng(seed: int, name: str) -> np.random.Generator:
    """A generator private to one dataset, so the makers do not depend on each other."""
    return np.random.default_rng([int(seed), _DATASET_KEYS[name]])


def _rotate(points: np.ndarray, center: Tuple[float, float], angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rel = points - np.asarray(center)
    return rel @ np.array([[c, s], [-s, c]]) + np.asarray(center)


def shape_polygon(shape: str, cx: float, cy: float, size: float,
                  angle: float = 0.0) -> Polygon:
    """Vertices of a named shape that fits in a ``size`` x ``size`` box centred at (cx, cy).

    Args:
        shape: One of 'circle', 'octagon', 'diamond', 'triangle', 'rectangle', 'square',
            'star', 'cross'.
        cx, cy: Centre in pixels.
        size: Side of the bounding square (rectangles are 4:3 inside it).
        angle: Rotation in radians.

    Returns:
        (N, 2) float array of (x, y) vertices.
    """
    r = size / 2.0
    if shape == 'circle':
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif shape == 'octagon':
        t = np.linspace(0, 2 * np.pi, 8, endpoint=False) + np.pi / 8
        pts = np.stack([np.cos(t), np.sin(t)], 1) * r
    elif shape == 'diamond':
        pts = np.array([[0, -r], [0.65 * r, 0], [0, r], [-0.65 * r, 0]])
    elif shape == 'triangle':
        pts = np.array([[0, -r], [0.9 * r, 0.8 * r], [-0.9 * r, 0.8 * r]])
    elif shape == 'rectangle':
        pts = np.array([[-r, -0.72 * r], [r, -0.72 * r], [r, 0.72 * r], [-r, 0.72 * r]])
    elif shape == 'square':
        pts = np.array([[-0.85 * r, -0.85 * r], [0.85 * r, -0.85 * r],
                        [0.85 * r, 0.85 * r], [-0.85 * r, 0.85 * r]])
    elif shape == 'star':
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        rad = np.where(np.arange(10) % 2 == 0, r, 0.42 * r)
        pts = np.stack([np.cos(t) * rad, np.sin(t) * rad], 1)
    elif shape == 'cross':
        a, b = r, 0.33 * r
        pts = np.array([[-b, -a], [b, -a], [b, -b], [a, -b], [a, b], [b, b], [b, a], [-b, a],
                        [-b, b], [-a, b], [-a, -b], [-b, -b]])
    else:
        raise ValueError(f"unknown shape '{shape}'; known: circle, octagon, diamond, "
                         'triangle, rectangle, square, star, cross')
    pts = pts.astype(np.float64) + np.array([cx, cy])
    if angle:
        pts = _rotate(pts, (cx, cy), angle)
    return pts


def polygon_mask(poly: Polygon, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon exactly as pycocotools does for a COCO ``segmentation`` polygon.

    Args:
        poly: (N, 2) vertices in pixels.
        height, width: Image size.

    Returns:
        (height, width) uint8 mask of 0/1.
    """
    flat = [float(v) for v in np.asarray(poly, dtype=np.float64).reshape(-1)]
    rles = mask_utils.frPyObjects([flat], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(np.uint8)


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (``{'counts': [ints], 'size': [h, w]}``, as crowd regions use).

    Counts are column-major run lengths that start with a run of zeros (possibly empty).
    """
    h, w = mask.shape
    flat = np.asarray(mask, dtype=np.uint8).reshape(-1, order='F')
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return {'counts': [int(c) for c in counts], 'size': [int(h), int(w)]}


def compressed_rle(mask: np.ndarray) -> dict:
    """COCO's compressed RLE with ``counts`` as a str (what json needs)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts']}


def mask_bbox(mask: np.ndarray) -> List[int]:
    """Tight integer xywh box of a non-empty mask (pixel extent, width = max - min + 1)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def _jitter(color: Color, rng: np.random.Generator, amount: int = 14) -> np.ndarray:
    return np.clip(np.asarray(color) + rng.integers(-amount, amount + 1, 3), 0, 255)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A plain, low-saturation background with a soft gradient (float32 HxWx3)."""
    base = rng.uniform(95, 175) + rng.uniform(-12, 12, 3)
    grad = rng.uniform(-18, 18, 3)
    ramp = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None, None]
    return np.broadcast_to(base + ramp * grad, (height, width, 3)).astype(np.float32)


def _finish(img: np.ndarray, rng: np.random.Generator, noise: float = 6.0) -> np.ndarray:
    """Add pixel noise and convert to uint8."""
    img = img + rng.normal(0.0, noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _save_jpeg(img: np.ndarray, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path, format='JPEG', quality=92)


def _save_json(obj: dict, path: str) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def _size_pair(size: Union[int, Tuple[int, int]], rng: np.random.Generator,
               jitter: bool = True) -> Tuple[int, int]:
    """(height, width): ``size`` is the longest side (jittered per image) or an exact pair."""
    if isinstance(size, (tuple, list)):
        return int(size[0]), int(size[1])
    if not jitter:
        return int(size), int(size)
    h = int(round(size * rng.uniform(0.75, 1.0)))
    w = int(round(size * rng.uniform(0.75, 1.0)))
    if rng.random() < 0.5:
        h = int(size)
    else:
        w = int(size)
    return h, w


def _place_boxes(rng: np.random.Generator, height: int, width: int, sizes: Sequence[float],
                 margin: float = 3.0, y_range: Optional[Tuple[float, float]] = None,
                 tries: int = 200) -> List[Tuple[int, float, float, float]]:
    """Centres for square boxes of the given sizes, inside the image and not overlapping.

    Returns ``(index, cx, cy, size)`` for every box that found room (a box that does not fit
    after ``tries`` attempts is dropped).
    """
    placed: List[Tuple[int, float, float, float]] = []
    for idx, s in enumerate(sizes):
        half = s / 2 + 1
        lo_y, hi_y = half, height - half
        if y_range is not None:
            lo_y, hi_y = max(lo_y, y_range[0]), min(hi_y, y_range[1])
        if hi_y <= lo_y or width - half <= half:
            continue
        for _ in range(tries):
            cx, cy = rng.uniform(half, width - half), rng.uniform(lo_y, hi_y)
            if all(abs(cx - px) > (s + ps) / 2 + margin or abs(cy - py) > (s + ps) / 2 + margin
                   for _, px, py, ps in placed):
                placed.append((idx, cx, cy, s))
                break
    return placed


def _round_poly(poly: Polygon) -> List[float]:
    return [round(float(v), 2) for v in poly.reshape(-1)]


# --------------------------------------------------------------------------------------------
# COCO instances
# --------------------------------------------------------------------------------------------


def make_coco(root: str, seed: int = 0, num_train: int = 24, num_val: int = 8,
              size: Union[int, Tuple[int, int]] = 128, with_crowd: bool = True) -> str:
    """Write a COCO-2017-format instance detection / segmentation set.

    Layout: ``train2017/*.jpg``, ``val2017/*.jpg`` (12-digit image-id names) and
    ``annotations/instances_{train,val}2017.json`` with the sections of the real files
    (info, licenses, images, annotations, categories). ``categories`` lists all 80 COCO
    categories with their real ids; annotations use the five in :data:`MINI_COCO_CLASSES`
    (shape + colour each). Objects carry polygon segmentation, float xywh ``bbox`` (polygon
    extent), ``area`` (area of the rasterised polygon) and ``iscrowd=0``; with ``with_crowd``
    the first image of each split also has one ``iscrowd=1`` group of touching balls with an
    uncompressed-RLE mask, as real COCO crowds have.

    Config: ``data_root=<root>/``, ``ann_file='annotations/instances_train2017.json'``,
    ``data_prefix=dict(img='train2017/')`` (val: ``instances_val2017.json``, ``val2017/``),
    ``CocoMetric(ann_file=<root>/annotations/instances_val2017.json, metric=['bbox', 'segm'])``.
    Either keep the default 80 classes (``num_classes=80``), or set
    ``metainfo=dict(classes=MINI_COCO_CLASSES)`` on every dataset and ``num_classes=5`` in the
    heads (the tuple must stay in this order: CocoDataset labels categories in file order).

    Args:
        root: Output folder (created).
        seed: Random seed; the same seed gives identical files.
        num_train: Training images.
        num_val: Validation images.
        size: Longest image side (the other side is 75-100 % of it, per image) or an exact
            (height, width).
        with_crowd: Add one crowd annotation to the first image of each split.

    Returns:
        ``root``.
    """
    rng = _rng(seed, 'coco')
    ids = rng.choice(np.arange(1, 600000), num_train + num_val, replace=False)
    splits = {'train2017': sorted(ids[:num_train].tolist()),
              'val2017': sorted(ids[num_train:].tolist())}
    cat_id = {name: cid for cid, name, _ in COCO_CATEGORIES}
    categories = [{'supercategory': sup, 'id': cid, 'name': name}
                  for cid, name, sup in COCO_CATEGORIES]
    ann_id = 1
    for split, img_ids in splits.items():
        images, annotations = [], []
        for k, img_id in enumerate(img_ids):
            h, w = _size_pair(size, rng)
            img = _background(rng, h, w)
            num = int(rng.integers(1, 5))
            names = [MINI_COCO_CLASSES[i] for i in rng.integers(0, len(MINI_COCO_CLASSES), num)]
            crowd = with_crowd and k == 0
            sizes = rng.uniform(0.18, 0.42, num) * min(h, w)
            if crowd:  # a row of three touching balls, reserved first
                sizes = np.concatenate([[0.6 * min(h, w)], sizes])
            boxes = _place_boxes(rng, h, w, sizes.tolist())
            for j, cx, cy, s in boxes:
                if crowd and j == 0:
                    shape, color = MINI_COCO_SPEC['sports ball']
                    m = np.zeros((h, w), np.uint8)
                    for dx in (-s / 3, 0.0, s / 3):
                        poly = shape_polygon(shape, cx + dx, cy + rng.uniform(-2, 2), s / 3 + 1)
                        m |= polygon_mask(poly, h, w)
                    img[m > 0] = _jitter(color, rng)
                    annotations.append({
                        'segmentation': uncompressed_rle(m), 'area': int(m.sum()), 'iscrowd': 1,
                        'image_id': int(img_id), 'bbox': [float(v) for v in mask_bbox(m)],
                        'category_id': cat_id['sports ball'], 'id': ann_id})
                    ann_id += 1
                    continue
                name = names[j - 1] if crowd else names[j]
                shape, color = MINI_COCO_SPEC[name]
                # rounded as stored, so image, mask, bbox and area agree exactly
                poly = np.round(shape_polygon(shape, cx, cy, s, angle=rng.uniform(-0.25, 0.25)), 2)
                m = polygon_mask(poly, h, w)
                if m.sum() < 16:
                    continue
                img[m > 0] = _jitter(color, rng)
                x0, y0 = poly.min(0)
                x1, y1 = poly.max(0)
                area = float(mask_utils.area(mask_utils.encode(np.asfortranarray(m))))
                annotations.append({
                    'segmentation': [_round_poly(poly)], 'area': area, 'iscrowd': 0,
                    'image_id': int(img_id),
                    'bbox': [round(float(x0), 2), round(float(y0), 2),
                             round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                    'category_id': cat_id[name], 'id': ann_id})
                ann_id += 1
            file_name = f'{img_id:012d}.jpg'
            _save_jpeg(_finish(img, rng), osp.join(root, split, file_name))
            images.append({
                'license': 1, 'file_name': file_name, 'coco_url': '', 'height': h, 'width': w,
                'date_captured': '2017-01-01 00:00:00', 'flickr_url': '', 'id': int(img_id)})
        _save_json({
            'info': {'description': 'visattn_mm mini COCO (synthetic shapes)', 'url': '',
                     'version': '1.0', 'year': 2017,
                     'contributor': 'visattn_mm.testing.mini_datasets',
                     'date_created': '2017/09/01'},
            'licenses': [{'url': '', 'id': 1, 'name': 'synthetic, no licence restrictions'}],
            'images': images, 'annotations': annotations, 'categories': categories,
        }, osp.join(root, 'annotations', f'instances_{split}.json'))
    return root


# --------------------------------------------------------------------------------------------
# ADE20K (scene parsing + instances)
# --------------------------------------------------------------------------------------------

ADE_SPLITS = (('training', 'train'), ('validation', 'val'))


def _ade_label(name: str) -> int:
    """Value of an ADE20K class in the annotation PNGs (1..150)."""
    return ADE150_CLASSES.index(name) + 1


def _thing_parts(kind: str, cx: float, cy: float, s: float,
                 rng: np.random.Generator) -> List[Tuple[Polygon, Color]]:
    """Polygons (with colours) that together draw one thing of the given kind."""
    if kind == 'person':  # head on a body, 1:2.5 tall
        body = np.array([[-0.22, -0.25], [0.22, -0.25], [0.2, 0.5], [-0.2, 0.5]]) * s
        head = shape_polygon('circle', 0, -0.36 * s, 0.24 * s)
        return [(body + [cx, cy], ADE_THING_SPEC['person'][1]), (head + [cx, cy], _SKIN)]
    if kind == 'car':  # wide body with a cabin and two dark wheels
        body = np.array([[-0.5, -0.05], [0.5, -0.05], [0.5, 0.2], [-0.5, 0.2]]) * s
        cabin = np.array([[-0.28, -0.25], [0.22, -0.25], [0.35, -0.05], [-0.4, -0.05]]) * s
        wl = shape_polygon('circle', -0.3 * s, 0.22 * s, 0.2 * s)
        wr = shape_polygon('circle', 0.3 * s, 0.22 * s, 0.2 * s)
        color = ADE_THING_SPEC['car'][1]
        return [(body + [cx, cy], color), (cabin + [cx, cy], color),
                (wl + [cx, cy], (20, 20, 20)), (wr + [cx, cy], (20, 20, 20))]
    shape, color = ADE_THING_SPEC[kind]
    return [(shape_polygon(shape, cx, cy, s, angle=rng.uniform(-0.2, 0.2)), color)]


def _ade_scene(rng: np.random.Generator, h: int, w: int
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, List[str]]:
    """Draw one scene.

    Returns:
        image (float32 HxWx3), label map (uint8, ADE values 0..150), instance map (int32, 0 =
        no thing, k = the k-th thing) and the class name of each thing (index k-1).
    """
    img = np.zeros((h, w, 3), np.float32)
    label = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    horizon = int(h * rng.uniform(0.35, 0.55))
    outdoor = rng.random() < 0.6
    top = 'sky' if outdoor else 'wall'
    ground = ('grass' if rng.random() < 0.5 else 'road') if outdoor else 'floor'

    def paint(mask: np.ndarray, name: str, color: Optional[Color] = None) -> None:
        img[mask] = _jitter(color or ADE_STUFF_COLORS[name], rng, 8)
        label[mask] = _ade_label(name) if name else 0

    paint(yy < horizon, top)
    paint(yy >= horizon, ground)
    if outdoor:  # a few buildings standing on the horizon
        for _ in range(int(rng.integers(0, 3))):
            bw = int(w * rng.uniform(0.12, 0.3))
            bh = int(horizon * rng.uniform(0.3, 0.8))
            x0 = int(rng.integers(0, max(1, w - bw)))
            paint((xx >= x0) & (xx < x0 + bw) & (yy >= horizon - bh) & (yy < horizon),
                  'building')
    if rng.random() < 0.3:  # an unlabelled ("other", value 0) patch
        poly = shape_polygon('circle', rng.uniform(0, w), rng.uniform(0, h),
                             rng.uniform(0.1, 0.2) * min(h, w))
        paint(polygon_mask(poly, h, w) > 0, '', tuple(int(v) for v in rng.integers(0, 256, 3)))

    inst = np.zeros((h, w), np.int32)
    kinds: List[str] = []
    num = int(rng.integers(1, 4))
    sizes = (rng.uniform(0.25, 0.45, num) * min(h, w)).tolist()
    for _, cx, cy, s in _place_boxes(rng, h, w, sizes, y_range=(horizon - 0.1 * h, h)):
        kind = MINI_ADE_THING_CLASSES[int(rng.integers(0, len(MINI_ADE_THING_CLASSES)))]
        whole = np.zeros((h, w), bool)
        for poly, color in _thing_parts(kind, cx, cy, s, rng):
            part = polygon_mask(poly, h, w) > 0
            img[part] = _jitter(color, rng, 10)
            whole |= part
        if whole.sum() < 16:
            continue
        label[whole] = _ade_label(kind)
        kinds.append(kind)
        inst[whole] = len(kinds)
    return img, label, inst, kinds


def make_ade20k(root: str, seed: int = 0, num_train: int = 16, num_val: int = 6,
                size: Union[int, Tuple[int, int]] = 128, instances: bool = True) -> str:
    """Write an ADEChallengeData2016-format scene-parsing set (plus instance json files).

    Layout: ``images/{training,validation}/ADE_{train,val}_%08d.jpg`` and
    ``annotations/{training,validation}/<same stem>.png`` (uint8, one channel, 0 = other,
    k = ADE150_CLASSES[k-1]). Scenes: sky/wall over grass/road/floor with buildings, a
    sometimes-unlabelled patch (value 0) and 1-3 things (person, car, box, ball). With
    ``instances`` it also writes ``ade20k_instance_{train,val}.json`` in the form mmdet's
    ``tools/dataset_converters/ade20k2coco.py`` produces (except that annotation ids start at
    1, see below): image ``id`` = file stem (a str),
    ``categories`` = the 100 thing classes with id = 0-based ADE150 index, annotations with
    compressed-RLE masks taken from the same pixels as the semantic PNG, integer tight
    ``bbox`` and ``area``.

    Semantic config (mmseg): ``ADE20KDataset(data_root=<root>, data_prefix=dict(
    img_path='images/training', seg_map_path='annotations/training'))`` (validation alike),
    ``reduce_zero_label=True`` (the class default), ``IoUMetric(iou_metrics=['mIoU'])``; the
    150 default classes stay (``num_classes=150``).
    Instance config (mmdet): ``ADE20KInstanceDataset(data_root=<root>/,
    ann_file='ade20k_instance_train.json', data_prefix=dict(img='images/training'))``,
    ``CocoMetric(ann_file=<root>/ade20k_instance_val.json, metric=['bbox', 'segm'])``,
    default 100 classes (``num_classes=100``), ``LoadAnnotations(with_mask=True)`` with the
    default ``poly2mask=True`` (masks are RLE).

    Args:
        root: Output folder (created).
        seed: Random seed.
        num_train: Training images.
        num_val: Validation images.
        size: Longest image side (jittered per image) or an exact (height, width).
        instances: Also write the instance json files.

    Returns:
        ``root``.
    """
    rng = _rng(seed, 'ade20k')
    categories = [{'id': ADE150_CLASSES.index(name), 'name': name}
                  for name in ADE_THING_CLASSES]
    for folder, tag in ADE_SPLITS:
        images, annotations = [], []
        # ids start at 1: pycocotools' COCOeval records a match by the ground truth's id, so
        # an annotation with id 0 can never count as matched (mmdet's ade20k2coco.py starts
        # at 0, which costs the first instance of a split)
        ann_id = 1
        for k in range(num_train if tag == 'train' else num_val):
            stem = f'ADE_{tag}_{k + 1:08d}'
            h, w = _size_pair(size, rng)
            img, label, inst, kinds = _ade_scene(rng, h, w)
            _save_jpeg(_finish(img, rng, 5.0), osp.join(root, 'images', folder, stem + '.jpg'))
            seg_path = osp.join(root, 'annotations', folder, stem + '.png')
            os.makedirs(osp.dirname(seg_path), exist_ok=True)
            Image.fromarray(label).save(seg_path)  # uint8 2-D: mode 'L'
            images.append({'id': stem, 'file_name': stem + '.jpg', 'height': h, 'width': w})
            for i, kind in enumerate(kinds, start=1):
                m = (inst == i).astype(np.uint8)
                rle = compressed_rle(m)
                annotations.append({
                    'id': ann_id, 'image_id': stem, 'iscrowd': 0,
                    'category_id': ADE150_CLASSES.index(kind), 'bbox': mask_bbox(m),
                    'segmentation': rle, 'area': int(m.sum())})
                ann_id += 1
        if instances:
            _save_json({'images': images, 'categories': categories,
                        'annotations': annotations},
                       osp.join(root, f'ade20k_instance_{tag}.json'))
    return root


def make_ade20k_instance(root: str, seed: int = 0, num_train: int = 16, num_val: int = 6,
                         size: Union[int, Tuple[int, int]] = 128) -> str:
    """The ADE20K set with its instance json files (see :func:`make_ade20k`)."""
    return make_ade20k(root, seed=seed, num_train=num_train, num_val=num_val, size=size,
                       instances=True)


# --------------------------------------------------------------------------------------------
# ImageNet
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Market-1501
# --------------------------------------------------------------------------------------------

MARKET_HEIGHT, MARKET_WIDTH = 128, 64
MARKET_NUM_CAMERAS = 6


def _market_identity_looks(rng: np.random.Generator, num: int
                           ) -> List[Tuple[Color, Color, str]]:
    """Distinct (shirt, trousers, pattern) combinations, one per identity."""
    combos = [(s, t, p) for s in _SHIRT_COLORS for t in _TROUSER_COLORS for p in _PATTERNS]
    if num > len(combos):
        raise ValueError(f'at most {len(combos)} Market identities can be told apart, '
                         f'asked for {num}')
    order = rng.permutation(len(combos))[:num]
    return [combos[i] for i in order]


def _draw_person(rng: np.random.Generator, look: Optional[Tuple[Color, Color, str]],
                 cam: int, cam_tints: np.ndarray, crop: Optional[str] = None) -> np.ndarray:
    """A 128x64 pedestrian crop: background, head, shirt (with pattern), trousers.

    ``look=None`` draws a background-only crop (a false detection); ``crop='upper'`` keeps a
    badly cut detection showing only the upper body (Market's junk images look like this).
    """
    h, w = MARKET_HEIGHT, MARKET_WIDTH
    img = _background(rng, h, w) * cam_tints[cam - 1, 0] + cam_tints[cam - 1, 1]
    if look is not None:
        shirt, trousers, pattern = look
        scale = rng.uniform(0.82, 1.0)
        cx = w / 2 + rng.uniform(-6, 6)
        top = 6 + rng.uniform(-3, 3) + (1 - scale) * h * 0.5
        u = scale * h  # person height in pixels

        def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
            m = np.zeros((h, w), bool)
            m[max(0, int(y0)):max(0, int(y1)), max(0, int(x0)):max(0, int(x1))] = True
            return m

        head = polygon_mask(shape_polygon('circle', cx, top + 0.08 * u, 0.15 * u), h, w) > 0
        torso = rect(cx - 0.16 * u, top + 0.17 * u, cx + 0.16 * u, top + 0.52 * u)
        legs = rect(cx - 0.13 * u, top + 0.52 * u, cx + 0.13 * u, top + 0.95 * u)
        legs &= ~rect(cx - 0.015 * u, top + 0.6 * u, cx + 0.015 * u, top + 0.95 * u)
        img[legs] = _jitter(trousers, rng, 10)
        img[torso] = _jitter(shirt, rng, 10)
        if pattern == 'stripes':
            band = np.zeros((h, w), bool)
            for y in np.arange(top + 0.22 * u, top + 0.5 * u, 0.09 * u):
                band |= rect(cx - 0.16 * u, y, cx + 0.16 * u, y + 0.035 * u)
            img[torso & band] = _jitter((255 - np.asarray(shirt)) // 2 + 40, rng, 6)
        elif pattern == 'split':  # a two-tone shirt: left half darker
            img[torso & rect(0, 0, cx, h)] *= 0.55
        img[head] = _jitter(_SKIN, rng, 10)
        img *= rng.uniform(0.85, 1.15)  # per-image brightness
        if crop == 'upper':  # keep the top 45 % and stretch it to the full crop
            keep = img[: int(0.45 * h)]
            img = np.asarray(Image.fromarray(np.clip(keep, 0, 255).astype(np.uint8)).resize(
                (w, h), Image.BILINEAR), dtype=np.float32)
    return _finish(img, rng, 5.0)


def make_market1501(root: str, seed: int = 0, num_train_ids: int = 12, num_test_ids: int = 10,
                    num_distractors: int = 6, num_junk: int = 4) -> str:
    """Write a Market-1501-format person re-identification set.

    Layout: ``bounding_box_train/``, ``bounding_box_test/`` (gallery) and ``query/`` with
    128x64 crops named ``PPPP_cCsS_FFFFFF_NN.jpg`` (4-digit identity, camera 1..6, sequence,
    6-digit frame, 2-digit box index). Train and test identities are disjoint. Every test
    identity is seen by 2-4 cameras with two gallery crops per camera; it has a query crop on
    its first two cameras, so every query has gallery matches on another camera and on its own
    camera (the latter excluded by the protocol). The gallery also holds distractors
    (identity ``0000``: crops with no person) and junk (``-1_c...``: badly cut crops of test
    identities), as the real gallery does. An identity is a shirt colour, trousers colour and
    shirt pattern; crops vary in position, scale, brightness and per-camera tint.

    Config: run ``tools/dataset_converters/market1501_to_reid.py <root>`` first (or
    :func:`visattn_mm.datasets.market1501.convert_market1501`; writes ``meta/train.txt`` etc.);
    then mmdet ``ReIDDataset(data_root=<root>, ann_file='meta/train.txt',
    data_prefix=dict(img_path=''), triplet_sampler=dict(num_ids=8, ins_per_id=4))``, test
    ``ann_file='meta/test.txt'`` with ``batch_size=1`` (mmdet's ``BaseReID`` asserts it),
    ``visattn_mm.Market1501Metric`` as evaluator, ``num_classes=num_train_ids`` in
    ``LinearReIDHead``, and ``Resize(scale=(64, 128), keep_ratio=False)`` for the crops'
    own size (mmdet's MOT config uses 128x256).

    Args:
        root: Output folder (created).
        seed: Random seed.
        num_train_ids: Training identities (the triplet sampler needs at least ``num_ids``).
        num_test_ids: Query/gallery identities.
        num_distractors: Gallery crops with identity 0000.
        num_junk: Gallery crops with identity -1.

    Returns:
        ``root``.
    """
    rng = _rng(seed, 'market1501')
    pids = rng.choice(np.arange(1, 1502), num_train_ids + num_test_ids, replace=False)
    train_pids = sorted(pids[:num_train_ids].tolist())
    test_pids = sorted(pids[num_train_ids:].tolist())
    looks = dict(zip(train_pids + test_pids,
                     _market_identity_looks(rng, num_train_ids + num_test_ids)))
    # per camera: a brightness gain and an additive colour cast
    cam_tints = np.stack([np.stack([np.full(3, g), cast]) for g, cast in zip(
        rng.uniform(0.8, 1.2, MARKET_NUM_CAMERAS),
        rng.uniform(-15, 15, (MARKET_NUM_CAMERAS, 3)))]).astype(np.float32)
    frames: Dict[Tuple[int, int], int] = {}

    def name(pid: int, cam: int) -> str:
        seq = 1 + cam % 2  # a couple of sequences per camera, as in the real set
        frames[(cam, seq)] = frames.get((cam, seq), 0) + int(rng.integers(25, 400))
        box = int(rng.integers(1, 9))
        prefix = '-1' if pid == -1 else f'{pid:04d}'
        return f'{prefix}_c{cam}s{seq}_{frames[(cam, seq)]:06d}_{box:02d}.jpg'

    def write(folder: str, pid: int, cam: int, look, crop: Optional[str] = None) -> None:
        _save_jpeg(_draw_person(rng, look, cam, cam_tints, crop),
                   osp.join(root, folder, name(pid, cam)))

    for pid in train_pids:
        cams = sorted(rng.choice(np.arange(1, MARKET_NUM_CAMERAS + 1), int(rng.integers(2, 4)),
                                 replace=False).tolist())
        for cam in cams:
            for _ in range(2):
                write('bounding_box_train', pid, cam, looks[pid])
    for pid in test_pids:
        cams = sorted(rng.choice(np.arange(1, MARKET_NUM_CAMERAS + 1), int(rng.integers(2, 5)),
                                 replace=False).tolist())
        for cam in cams:
            for _ in range(2):
                write('bounding_box_test', pid, cam, looks[pid])
        for cam in cams[:2]:
            write('query', pid, cam, looks[pid])
    for _ in range(num_distractors):
        write('bounding_box_test', 0, int(rng.integers(1, MARKET_NUM_CAMERAS + 1)), None)
    for _ in range(num_junk):
        pid = test_pids[int(rng.integers(0, len(test_pids)))]
        write('bounding_box_test', -1, int(rng.integers(1, MARKET_NUM_CAMERAS + 1)),
              looks[pid], crop='upper')
    return root


# --------------------------------------------------------------------------------------------
# All sets, or one by name (what tools/mini_datasets.py runs)
# --------------------------------------------------------------------------------------------

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
