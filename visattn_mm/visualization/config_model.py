"""Read what the pictures need from a config: the test size and the normalisation of the data
preprocessor. Configs are read and their models built by :mod:`visattn_mm.apis.config` (one
place for the tools, visualisation, export and tests); its functions are re-exported here."""
import logging
from contextlib import contextmanager
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from visattn_mm.apis.config import build_model_from_config, build_model_in_scope, load_config

__all__ = ['build_model_from_config', 'build_model_in_scope', 'config_test_size',
           'get_backbone', 'iter_dicts', 'load_config', 'load_image', 'normalisation',
           'quiet_mmengine', 'to_tensor']

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@contextmanager
def quiet_mmengine(level: int = logging.WARNING):
    """Within the block, mmengine's current logger drops records below ``level`` (the INFO
    lines of model building); its level is restored afterwards."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)


def get_backbone(model: nn.Module) -> nn.Module:
    """The model's ``backbone`` (classifier, detector, segmentor), or the model itself."""
    return getattr(model, 'backbone', model)


def iter_dicts(node):
    """Every dict in a config tree (dicts, lists and tuples), depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from iter_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from iter_dicts(value)


def config_test_size(cfg: Config, image_hw: Optional[Sequence[int]] = None,
                     default: int = 224) -> Tuple[int, int]:
    """The (H, W) the config tests an image at: a ``CenterCrop`` crop; else a ``Resize`` scale
    (``(W, H)`` in OpenMMLab pipelines; with ``keep_ratio`` the image is scaled, keeping its
    aspect, to fit in the long and short sides of the scale, as mmcv's ``rescale`` does); else
    ``default`` square.

    Args:
        cfg (Config): the config.
        image_hw (Sequence[int], optional): the image's (H, W), for ``keep_ratio`` resizes.
            Defaults to None: the scale's (short, long) sides.
        default (int): the side if the pipeline says nothing. Defaults to 224.

    Returns:
        tuple[int, int]: (H, W).
    """
    pipeline = cfg.get('test_pipeline') or \
        cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    steps = list(iter_dicts(pipeline))
    for step in steps:
        if step.get('type') == 'CenterCrop' and step.get('crop_size'):
            size = step['crop_size']
            return (size, size) if isinstance(size, int) else (int(size[1]), int(size[0]))
    for step in steps:
        if 'Resize' in str(step.get('type', '')) and step.get('scale'):
            scale = step['scale']
            if isinstance(scale, int):
                return scale, scale
            w, h = int(scale[0]), int(scale[1])
            if not step.get('keep_ratio'):
                return h, w
            if image_hw is None:
                return min(w, h), max(w, h)
            ih, iw = image_hw[:2]
            factor = min(max(w, h) / max(ih, iw), min(w, h) / min(ih, iw))
            return max(1, round(ih * factor)), max(1, round(iw * factor))
    return default, default


def normalisation(cfg: Config) -> Tuple[Sequence[float], Sequence[float]]:
    """(mean, std) in RGB order from the config's data preprocessor, ImageNet's otherwise."""
    pre = cfg.get('model', {}).get('data_preprocessor') or cfg.get('data_preprocessor') or {}
    return tuple(pre.get('mean', IMAGENET_MEAN)), tuple(pre.get('std', IMAGENET_STD))


def load_image(path: str, size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3), resized to ``size`` = (H, W) if given.

    Args:
        path (str): the image.
        size (tuple[int, int], optional): (H, W). Defaults to None: as it is.

    Returns:
        np.ndarray: (H, W, 3) uint8, RGB.
    """
    import cv2
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f'cannot read an image from {path}')
    if size is not None:
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(image[:, :, ::-1])


def to_tensor(image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD, device: str = 'cpu') -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> a normalised (1, 3, H, W) float tensor."""
    x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)
    x = (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    return x.unsqueeze(0).to(device)
