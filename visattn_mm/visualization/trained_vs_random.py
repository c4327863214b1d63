"""A model's picture with its random initial weights beside the same picture after a short
training run on the mini classification set, and how much each map is about the set's shape
(``tools/analysis/draw_pictures.py`` trains the models and calls :func:`draw_trained_vs_random`).
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from .attention_maps import compute_picture
from .config_model import (build_model_from_config, get_backbone, load_config, load_image,
                           normalisation, to_tensor)
from .drawing import Panel, matrix_heatmaps, panel_grid, stack, text_strip, write_png

SHAPES = ('circle', 'triangle', 'square', 'star', 'cross')  # IMAGENET_MINI_SPEC's order

def shape_mask(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the saturated pixels, i.e. the mini set's shape (the backgrounds are
    low-saturation grey-ish gradients)."""
    import cv2
    return cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1] > 100


def object_centre(image: np.ndarray) -> Tuple[float, float]:
    """(y, x) of the centroid of the shape (:func:`shape_mask`), or the image centre if the
    image has no saturated pixels."""
    ys, xs = np.nonzero(shape_mask(image))
    if len(ys) < 10:
        return image.shape[0] / 2, image.shape[1] / 2
    return float(ys.mean()), float(xs.mean())


def shape_statistic(kind: str, values: np.ndarray, mask: np.ndarray
                    ) -> Tuple[float, float, float]:
    """How much a map is about the shape.

    Attention kinds (``branch``, ``ladder``, ``broad``; rows of softmax weights): the share of
    the weight on the shape's tokens (each token counted by the fraction of its pixels on the
    shape), beside the share the shape has of the tokens the row reaches (what a uniform row
    would put on it), and the row's largest weight over its mean (1: uniform). ``context`` (a
    similarity map): the correlation of the map with the shape's coverage per token (positive:
    the shape is high), beside 0 and NaN.

    Returns:
        tuple[float, float, float]: (statistic, its value for a map that ignores the shape,
        peak over mean).
    """
    import cv2
    h, w = values.shape
    cover = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    if kind == 'context':
        if values.std() == 0 or cover.std() == 0:
            return 0.0, 0.0, float('nan')
        return float(np.corrcoef(values.ravel(), cover.ravel())[0, 1]), 0.0, float('nan')
    weights = np.clip(values, 0, None)
    support = weights > 0
    if not support.any():
        return 0.0, 0.0, float('nan')
    return (float((weights * cover).sum() / weights.sum()), float(cover[support].mean()),
            float(weights.max() / weights[support].mean()))


def pick_images(data_root: str, classes: Sequence[int]) -> List[Tuple[str, int]]:
    """The first validation image of each of ``classes``: (path, label)."""
    with open(osp.join(data_root, 'meta', 'val.txt')) as f:
        rows = [line.split() for line in f if line.strip()]
    picked = []
    for label in classes:
        name = next(n for n, lab in rows if int(lab) == label)
        picked.append((osp.join(data_root, 'val', name), label))
    return picked


def _predict(model, x: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model(x, mode='tensor').argmax(-1)[0])


def write_small_png(path: str, picture: np.ndarray, limit: int = 290_000) -> int:
    """Write the picture with a palette of as many colours as keep it under ``limit`` bytes
    (256 down to 96); returns the colours used. The sizes are tried with a plain median-cut
    palette (fast), then the chosen one is written with the refined palette (slow, and so far
    always smaller)."""
    steps = (256, 192, 128, 96)
    for n, colours in enumerate(steps):
        write_png(path, picture, colours=colours, kmeans=0)
        if os.path.getsize(path) > limit and n < len(steps) - 1:
            continue
        write_png(path, picture, colours=colours)
        if os.path.getsize(path) <= limit or n == len(steps) - 1:
            return colours
    return steps[-1]


def draw_trained_vs_random(result: dict, data_root: str, path: str, kinds: Sequence[str],
                           arch: dict, size: int, batch: int, classes: Sequence[int]
                           ) -> List[str]:
    """A model's picture written to ``path``: for each drawn image, a row with the random weights
    and one with the trained weights (DenseDeiT: its weight matrices, which do not depend on the
    image). The shape statistics (:func:`shape_statistic`, averaged over the drawn images, per
    panel) go to ``result['shape_stats']``.

    Args:
        result (dict): the training run: ``config``, the ``random`` and ``trained`` checkpoints,
            ``top1_random``, ``top1_trained`` and ``iters``.
        data_root (str): the mini classification set.
        path (str): the PNG to write.
        kinds (Sequence[str]): the kinds of picture drawn.
        arch (dict): the backbone's arch, named in the title.
        size (int): the image side the model was trained and is drawn at.
        batch (int): the training batch size, named in the title.
        classes (Sequence[int]): the classes whose first validation image is drawn.

    Returns:
        list[str]: lines of what the models predicted and how much their maps are about the
        shape.
    """
    cfg = load_config(result['config'])
    models = {name: build_model_from_config(cfg, result[name]) for name in ('random', 'trained')}
    label = {name: f"{name} (mini top-1 {result['top1_' + name]:.0f} %)"
             for name in models}
    title = (f"{type(get_backbone(models['trained'])).__name__} {_arch_text(arch)}, "
             f"{result['iters']} it. x {batch} images")
    notes = []
    kinds = tuple(kinds)
    if kinds == ('dense_weights',):
        pics = {n: compute_picture(get_backbone(m), (size, size), None, 'dense_weights')
                for n, m in models.items()}
        (_, before), = pics['random'].matrices
        (_, after), = pics['trained'].matrices
        bound = float(np.nanmax(np.abs(np.concatenate([before, after]))))
        left = matrix_heatmaps([(f'w_ij, {label["random"]}', before),
                                (f'w_ij, {label["trained"]}', after)], panel_inches=3.6,
                               bound=bound)
        right = matrix_heatmaps([('trained - random (own scale)', after - before)],
                                panel_inches=3.6, fmt='{:+.3f}')
        picture = stack([text_strip(title, left.shape[1] + right.shape[1]),
                         stack([left, right], axis=1, gap=0)], gap=0)
        write_small_png(path, picture)
        change = np.abs(after - before)[np.isfinite(after)]
        result['weight_change'] = dict(max=float(change.max()), mean=float(change.mean()),
                                       largest_weight=bound)
        notes.append(f'mixing weights: largest |change| {change.max():.3f}, mean '
                     f'{change.mean():.3f} (the weights themselves reach |w| = {bound:.2f})')
        return notes
    mean, std = normalisation(cfg)
    rows = []
    stats: Dict[str, Dict[str, list]] = {name: {} for name in models}
    for image_path, truth in pick_images(data_root, classes):
        image = load_image(image_path, (size, size))
        mask = shape_mask(image)
        x = to_tensor(image, mean, std)
        query = object_centre(image)
        for name, model in models.items():
            pred = _predict(model, x)
            notes.append(f'{osp.basename(image_path)} ({SHAPES[truth]}): {name} predicts '
                         f'{SHAPES[pred]}')
            panels = [Panel(f'{name}: says {SHAPES[pred]}', None)]
            nearest = True
            for kind in kinds:
                pic = compute_picture(get_backbone(model), image.shape, x, kind, query=query)
                for p in pic.panels:
                    stat = shape_statistic(kind, p.map, mask)
                    stats[name].setdefault(_short(p.title), []).append(stat)
                    suffix = f' x{stat[2]:.1f}' if kind != 'context' else f' c{stat[0]:+.2f}'
                    panels.append(p._replace(title=_short(p.title) + suffix))
                nearest = pic.nearest
            rows.append(panel_grid(image, panels, cols=len(panels), nearest=nearest,
                                   min_side=size))
        rows.append(np.full((4, 8, 3), 255, np.uint8))  # a gap between images
    width = max(r.shape[1] for r in rows)
    key = ('cN: correlation of the map with the shape' if kinds == ('context',) else
           'xN: largest weight / mean weight of the row (x1.0: uniform)')
    rows[:0] = [text_strip(title, width),
                text_strip(f"rows: {label['random']} / {label['trained']}", width),
                text_strip(key, width)]
    write_small_png(path, stack(rows, gap=2))
    what = ('correlation with the shape' if kinds == ('context',) else
            'weight on the shape (uniform would put; peak / mean weight)')
    result['shape_stats'] = {name: {panel: np.mean(values, axis=0).round(3).tolist()
                                    for panel, values in per.items()}
                             for name, per in stats.items()}
    for name, per in result['shape_stats'].items():
        notes.append(f'{name}, {what}, mean of the images: ' + ', '.join(
            f'{panel} {v[0]:.2f}' + (f' ({v[1]:.2f}; {v[2]:.1f})' if what.startswith('weight')
                                     else '')
            for panel, v in per.items()))
    return notes


def _arch_text(arch: dict) -> str:
    """The arch in few characters: ``C=12 depths=2,2,3,1 heads=2,4 ws=4``."""
    names = dict(embed_dims='C', depths='depths', widths='widths', num_layers='layers',
                 num_heads='heads', window_size='ws')
    return ' '.join(f"{names[k]}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                    for k, v in arch.items() if k in names)


def _short(title: str) -> str:
    """Panel titles that fit 128 px."""
    return (title.replace('branch ', 'b').replace(' (shift ', ' s').replace(')', '')
            .replace('stage ', 's').replace(' round ', ' r').replace('broad (all layers', 'broad'))
