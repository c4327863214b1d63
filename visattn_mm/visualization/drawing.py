"""Drawing: token maps over an image as a grid of titled panels, and weight matrices as heat maps.

The panel grid is composed with numpy (and ``cv2`` for the titles), so a picture has an exact,
known size: ``rows * (H + title_height)`` by ``cols * W`` pixels for an H x W image. The matrix
heat maps use matplotlib (``imshow`` with a colorbar) at a fixed figure size and dpi. Both
exist as arrays (:func:`panel_grid`, :func:`matrix_heatmaps`) that :func:`stack` and
:func:`text_strip` compose into one picture (e.g. random weights beside trained ones) and
:func:`write_png` writes, optionally with a palette to keep the file small.
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
        map (np.ndarray, optional): (h, w) token map, upsampled to the image; None: the
            image alone.
        marker (tuple[int, int], optional): (y, x) image pixel to mark (a query).
        support_only (bool): colour only the map's non-zero tokens (see :func:`overlay`).
    """
    title: str
    map: Optional[np.ndarray]
    marker: Optional[Tuple[int, int]] = None
    support_only: bool = False


def colorize(values: np.ndarray, cmap: str = 'jet',
             mask: Optional[np.ndarray] = None) -> np.ndarray:
    """A 2-D map min-max scaled to [0, 1] and coloured: (h, w) -> (h, w, 3) uint8 RGB.

    A constant map is drawn at the colour of 0. With a boolean ``mask`` the min and max are
    those of the masked entries only (the others may fall outside [0, 1] and are clipped).
    """
    import matplotlib
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    chosen = values[mask] if mask is not None and mask.any() else values
    low, high = chosen.min(), chosen.max()
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    scaled = scaled.clip(0, 1)
    rgba = matplotlib.colormaps[cmap](scaled)
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, values: np.ndarray, alpha: float = 0.55,
            nearest: bool = True, marker: Optional[Tuple[int, int]] = None,
            support_only: bool = False) -> np.ndarray:
    """A token map over (a grey copy of) an image.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        values (np.ndarray): (h, w) map; each token covers its share of the image.
        alpha (float): weight of the heat map. Defaults to 0.55.
        nearest (bool): upsample token by token (True) or bilinearly. Defaults to True.
        marker (tuple[int, int], optional): (y, x) pixel marked with a white ring.
            Defaults to None.
        support_only (bool): colour only the tokens whose value is not 0 (e.g. the window an
            attention row lives in), min-max scaled among themselves; the others show the grey
            image alone. Defaults to False: the whole map is scaled and coloured.

    Returns:
        np.ndarray: (H, W, 3) uint8 RGB.
    """
    import cv2
    H, W = image.shape[:2]
    mask = np.asarray(values) != 0 if support_only else None
    heat = colorize(values, mask=mask)
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    heat = cv2.resize(heat, (W, H), interpolation=interpolation)
    grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    # the heat map over a grey copy of the image, so that its colours read as the map's
    weight = np.float32(alpha)
    if mask is not None:
        weight = cv2.resize(mask.astype(np.float32), (W, H),
                            interpolation=cv2.INTER_NEAREST)[..., None] * alpha
    out = grey[..., None] * (1 - weight) + heat.astype(np.float32) * weight
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


def panel_grid(image: np.ndarray, panels: Sequence[Panel], cols: int = 4,
               title_height: int = TITLE_HEIGHT, nearest: bool = True,
               min_side: int = MIN_SIDE) -> np.ndarray:
    """The panels over the image as one grid (what :func:`save_panels` writes).

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        panels (Sequence[Panel]): the maps, in reading order. A panel whose map is None shows
            the image itself (no heat map).
        cols (int): panels per row. Defaults to 4.
        title_height (int): pixels of the title strip above each panel. Defaults to 18.
        nearest (bool): see :func:`overlay`. Defaults to True.
        min_side (int): images with a shorter side are enlarged by a whole factor (markers
            follow) so that the titles fit. Defaults to 160.

    Returns:
        np.ndarray: (height, width, 3) uint8 RGB, the size :func:`grid_size` gives.
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
        canvas[top + title_height:top + title_height + H, left:left + W] = \
            image if panel.map is None else overlay(image, panel.map, nearest=nearest,
                                                     marker=panel.marker,
                                                     support_only=panel.support_only)
    return canvas


def write_png(path: str, picture: np.ndarray, colours: Optional[int] = None,
              kmeans: int = 2) -> None:
    """Write an RGB uint8 picture as PNG (folders are made).

    Args:
        path (str): the file.
        picture (np.ndarray): (H, W, 3) uint8 RGB.
        colours (int, optional): store it with a palette of at most this many colours
            (median cut refined by ``kmeans`` k-means passes, no dithering; heat maps over a
            noisy image compress several times smaller). Defaults to None: full colour.
        kmeans (int): k-means passes that refine the palette (without them median cut shifts
            some colours visibly; with them the file is also smaller, and the writing slower).
            Defaults to 2.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if colours:
        from PIL import Image
        Image.fromarray(np.ascontiguousarray(picture)).quantize(
            colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE,
            kmeans=kmeans).save(path, format='PNG', optimize=True)
        return
    import cv2
    if not cv2.imwrite(path, np.ascontiguousarray(picture[:, :, ::-1])):
        raise OSError(f'could not write {path}')


def save_panels(image: np.ndarray, panels: Sequence[Panel], path: str, cols: int = 4,
                title_height: int = TITLE_HEIGHT, nearest: bool = True,
                min_side: int = MIN_SIDE) -> Tuple[int, int]:
    """Write the panels over the image as one PNG grid at ``path`` (folders are made); the
    other arguments are :func:`panel_grid`'s.

    Returns:
        tuple[int, int]: the picture's (height, width), see :func:`grid_size`.
    """
    canvas = panel_grid(image, panels, cols, title_height, nearest, min_side)
    write_png(path, canvas)
    return canvas.shape[0], canvas.shape[1]


def matrix_heatmaps(matrices: Sequence[Tuple[str, np.ndarray]], panel_inches: float = 4.0,
                    dpi: int = 100, xlabel: str = 'earlier layer j', ylabel: str = 'layer i',
                    bound: Optional[float] = None, fmt: str = '{:.2f}') -> np.ndarray:
    """Weight matrices side by side as heat maps (``imshow`` with a colorbar each); NaN entries
    (unused) are left blank.

    Args:
        matrices (Sequence[tuple[str, np.ndarray]]): (title, (n, n) matrix) pairs.
        panel_inches (float): the side of each panel in inches. Defaults to 4.
        dpi (int): dots per inch. Defaults to 100.
        xlabel (str): label of the columns. Defaults to ``'earlier layer j'``.
        ylabel (str): label of the rows. Defaults to ``'layer i'``.
        bound (float, optional): the colour scale is [-bound, bound] in every panel, so that
            panels compare. Defaults to None: each panel's own largest absolute value.
        fmt (str): format of the values written in the cells (matrices up to 12 x 12).
            Defaults to ``'{:.2f}'``.

    Returns:
        np.ndarray: (``panel_inches * dpi``, ``len(matrices) * panel_inches * dpi``, 3) uint8
        RGB.
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
        own = float(np.abs(used).max()) if used.size else 1.0
        limit = bound if bound is not None else (own or 1.0)
        im = ax.imshow(np.ma.masked_invalid(mat), cmap='coolwarm', vmin=-limit, vmax=limit)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        if mat.shape[0] <= 12:  # the values in the used cells
            for i, j in zip(*np.nonzero(np.isfinite(mat))):
                ax.text(j, i, fmt.format(mat[i, j]), ha='center', va='center', fontsize=6)
        ticks = np.arange(mat.shape[0])
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.tick_params(labelsize=6)
    fig.canvas.draw()  # no tight bbox: the size stays figsize * dpi
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture


def save_matrix_heatmaps(matrices: Sequence[Tuple[str, np.ndarray]], path: str,
                         panel_inches: float = 4.0, dpi: int = 100,
                         xlabel: str = 'earlier layer j', ylabel: str = 'layer i'
                         ) -> Tuple[int, int]:
    """Write weight matrices side by side as heat maps (see :func:`matrix_heatmaps`).

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
    picture = matrix_heatmaps(matrices, panel_inches, dpi, xlabel, ylabel)
    write_png(path, picture)
    return picture.shape[0], picture.shape[1]


def text_strip(text: str, width: int, height: int = 22, scale: float = 0.5,
               background: int = 235) -> np.ndarray:
    """A (height, width, 3) strip with one line of black text (a heading)."""
    import cv2
    strip = np.full((height, width, 3), background, np.uint8)
    cv2.putText(strip, text, (4, height - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                cv2.LINE_AA)
    return strip


def stack(pictures: Sequence[np.ndarray], axis: int = 0, gap: int = 6) -> np.ndarray:
    """Pictures one under another (``axis=0``) or side by side (``axis=1``), aligned to the
    top-left, padded with white to a common width (height) and ``gap`` white pixels apart."""
    if not pictures:
        raise ValueError('nothing to stack')
    other = 1 - axis
    size = max(p.shape[other] for p in pictures)
    parts = []
    for n, p in enumerate(pictures):
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[other] = (0, size - p.shape[other])
        parts.append(np.pad(p, pad, constant_values=255))
        if gap and n < len(pictures) - 1:
            shape = [0, 0, 3]
            shape[axis], shape[other] = gap, size
            parts.append(np.full(shape, 255, np.uint8))
    return np.concatenate(parts, axis=axis)
