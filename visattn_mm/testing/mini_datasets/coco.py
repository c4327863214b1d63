"""The mini COCO instances set (mmdet ``CocoDataset`` + ``CocoMetric``)."""
import os.path as osp
from typing import Dict, Tuple, Union

import numpy as np
import pycocotools.mask as mask_utils

from ._draw import (Color, _background, _finish, _jitter, _place_boxes, _rng, _round_poly,
                    _save_jpeg, _save_json, _size_pair, mask_bbox, polygon_mask, shape_polygon,
                    uncompressed_rle)


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
