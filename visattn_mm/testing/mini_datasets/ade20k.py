"""The mini ADE20K sets: scene parsing (mmseg ``ADE20KDataset``) and instances (mmdet
``ADE20KInstanceDataset``)."""
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from ._draw import (_SKIN, Color, Polygon, _finish, _jitter, _place_boxes, _rng, _save_jpeg,
                    _save_json, _size_pair, compressed_rle, mask_bbox, polygon_mask, shape_polygon)


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
