"""Drawing: token maps over an image as a grid of titled panels, and weight matrices as heat maps.

The panel grid is composed with numpy (and ``cv2`` for the titles), so a picture has an exact,
known size: ``rows * (H + title_height)`` by ``cols * W`` pixels for an H x W image. The matrix
heat maps use matplotlib (``imshow`` with a colorbar) at a fixed figure size and dpi.
"""
import math
import os
import os.path as osp
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

TITLE_HEIGHT = 18
MIN_SIDE = 160  # smaller images are enlarged (by a whole factor) so that titles fit


class Panel(NamedTuple):
    """One picture of a grid.

    Args:
        title (str): the text above it.
        map (np.ndarray): (h, w) token map, upsampled to the image.
        marker (tuple[int, int], optional): (y, x) image pixel to mark (a query).
    """
    title: str
    map: np.ndarray
    marker: Optional[Tuple[int, int]] = None


def colorize(values: np.ndarray, cmap: str = 'jet') -> np.ndarray:
    """A 2-D map min-max scaled to [0, 1] and coloured: (h, w) -> (h, w, 3) uint8 RGB.

    A constant map is drawn at the colour of 0.
    """
    import matplotlib
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    low, high = values.min(), values.max()
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    rgba = matplotlib.colormaps[cmap](scaled)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, alpha: float = 0.55,
            nearest: bool = True, marker: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """A token map over (a grey copy of) an image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        values (np.ndarray): (h, w) map; each token covers its share of the image.
        alpha (float): weight of the heat map. Defaults to 0.55.
        nearest (bool): upsample token by token (True) or bilinearly. Defaults to True.
        marker (tuple[int, int], optional): (y, x) pixel marked with a white ring.
            Defaults to None.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    import cv2
    H, W = image.shape[:2]
    heat = colorize(values)
    heat = cv2.resize(heat, (W, H), interpolation=cv2.INTER_NEAREST if nearest
                      else cv2.INTER_LINEAR)
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    # the heat map over a grey copy of the image, so that its colours read as the map's
    out = grey[..., None] * (1 - alpha) + heat.astype(np.float32) * alpha
    out = np.ascontiguousarray(out.round().clip(0, 255).astype(np.uint8))
    if marker is not None:
        radius = max(2, min(H, W) // 40)
        cv2.circle(out, (int(marker[1]), int(marker[0])), radius, (255, 255, 255), 1)
    return out


def panel_factor(image_shape: Sequence[int], min_side: int = MIN_SIDE) -> int:
    """The whole factor a small image is enlarged by in the panels (1 for >= ``min_side``)."""
    return max(1, math.ceil(min_side / min(image_shape[:2])))


def grid_size(image_shape: Sequence[int], num_panels: int, cols: int,
              title_height: int = TITLE_HEIGHT, min_side: int = MIN_SIDE) -> Tuple[int, int]:
    """(height, width) in pixels of :func:`save_panels`' picture: ``rows * (f H + title)`` by
    ``cols * f W`` with ``f`` = :func:`panel_factor`."""
    f = panel_factor(image_shape, min_side)
    cols = max(1, min(cols, num_panels))
    rows = math.ceil(num_panels / cols)
    return rows * (f * image_shape[0] + title_height), cols * f * image_shape[1]


def save_panels(image: np.ndarray, panels: Sequence[Panel], path: str, cols: int = 4,
                title_height: int = TITLE_HEIGHT, nearest: bool = True,
                min_side: int = MIN_SIDE) -> Tuple[int, int]:
    """Write the panels over the image as one PNG grid.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        panels (Sequence[Panel]): the maps, in reading order.
        path (str): the PNG to write (folders are made).
        cols (int): panels per row. Defaults to 4.
        title_height (int): pixels of the title strip above each panel. Defaults to 18.
        nearest (bool): see :func:`overlay`. Defaults to True.
        min_side (int): images with a shorter side are enlarged by a whole factor (markers
            follow) so that the titles fit. Defaults to 160.

    Returns:
        tuple[int, int]: the picture's (height, width), see :func:`grid_size`.
    """
    import cv2
    if not panels:
        raise ValueError('no panels to draw')
    f = panel_factor(image.shape, min_side)
    if f > 1:
        image = np.repeat(np.repeat(image, f, axis=0), f, axis=1)
        panels = [p._replace(marker=None if p.marker is None else
                             (p.marker[0] * f + f // 2, p.marker[1] * f + f // 2))
                  for p in panels]
    H, W = image.shape[:2]
    cols = max(1, min(cols, len(panels)))
    height, width = grid_size(image.shape, len(panels), cols, title_height, min_side=1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    scale = max(0.3, min(0.5, W / 400))
    for n, panel in enumerate(panels):
        r, c = divmod(n, cols)
        top, left = r * (H + title_height), c * W
        cv2.putText(canvas, panel.title, (left + 2, top + title_height - 5),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        canvas[top + title_height:top + title_height + H, left:left + W] = overlay(
            image, panel.map, nearest=nearest, marker=panel.marker)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, canvas[:, :, ::-1]):
        raise OSError(f'could not write {path}')
    return height, width


def save_matrix_heatmaps(matrices: Sequence[Tuple[str, np.ndarray]], path: str,
                         panel_inches: float = 4.0, dpi: int = 100,
                         xlabel: str = 'earlier layer j', ylabel: str = 'layer i'
                         ) -> Tuple[int, int]:
    """Write weight matrices side by side as heat maps (``imshow`` with a colorbar each); NaN
    entries (unused) are left blank.

    Args:
        matrices (Sequence[tuple[str, np.ndarray]]): (title, (n, n) matrix) pairs.
        path (str): the PNG to write (folders are made).
        panel_inches (float): the side of each panel in inches. Defaults to 4.
        dpi (int): dots per inch. Defaults to 100.
        xlabel (str): label of the columns. Defaults to ``'earlier layer j'``.
        ylabel (str): label of the rows. Defaults to ``'layer i'``.

    Returns:
        tuple[int, int]: the picture's (height, width): ``panel_inches * dpi`` by
        ``len(matrices) * panel_inches * dpi``.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(matrices)
    if not n:
        raise ValueError('no matrices to draw')
    fig, axes = plt.subplots(1, n, figsize=(n * panel_inches, panel_inches), dpi=dpi,
                             squeeze=False, layout='constrained')
    for ax, (title, mat) in zip(axes[0], matrices):
        mat = np.asarray(mat, dtype=np.float64)
        used = mat[np.isfinite(mat)]
        bound = float(np.abs(used).max()) if used.size else 1.0
        im = ax.imshow(np.ma.masked_invalid(mat), cmap='coolwarm', vmin=-bound, vmax=bound)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if mat.shape[0] <= 12:  # the values in the used cells
            for i, j in zip(*np.nonzero(np.isfinite(mat))):
                ax.text(j, i, f'{mat[i, j]:.2f}', ha='center', va='center', fontsize=6)
        ticks = np.arange(mat.shape[0])
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.tick_params(labelsize=6)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)  # no tight bbox: the size stays figsize * dpi
    plt.close(fig)
    return int(round(panel_inches * dpi)), int(round(n * panel_inches * dpi))

