"""Drawing and file helpers shared by the mini dataset makers."""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

Polygon = np.ndarray  # (N, 2) float array of (x, y) vertices
Color = Tuple[int, int, int]
_SKIN: Color = (225, 185, 150)  # people in the ADE20K scenes and Market-1501

_DATASET_KEYS = {'coco': 1, 'ade20k': 2, 'imagenet': 3, 'market1501': 4}


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
