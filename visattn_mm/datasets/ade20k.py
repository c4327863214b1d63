"""ADE20K instance annotations (the instance-segmentation challenge's PNGs) -> COCO json.

:func:`convert_ade20k_instances` reads the layout that mmdet's
``tools/dataset_converters/ade20k2coco.py --task instance`` reads and writes the files mmdet's
``ADE20KInstanceDataset`` and ``CocoMetric`` read (its command line:
``tools/dataset_converters/ade20k_to_coco_instances.py``)::

    ADEChallengeData2016/
      images/{training,validation}/ADE_{train,val}_%08d.jpg
      annotations_instance/{training,validation}/<same stem>.png    (the instance challenge)
      imgCatIds.json          {"categories": [{"id": 1..100, "name": ...}, ...], ...}
      categoryMapping.txt     a header line, then "<instance id> <SceneParsing150 id> ..."
    ->  ade20k_instance_{train,val}.json

An instance PNG has three uint8 channels: R = the instance category (1..100, the numbering of
``imgCatIds.json``), G = the instance number within the image (0 = no instance), B unused. Each
non-zero G value is one annotation: its mask (compressed RLE, exact), tight integer ``bbox``
``[x, y, w, h]``, ``area`` (pixel count) and ``category_id`` = the 0-based SceneParsing150 index
of its category (``categoryMapping.txt``'s second column minus 1), as mmdet's converter writes
them; image ids are the file stems (strings), and ``categories`` are ``imgCatIds.json``'s with
their ids mapped the same way.

The difference to mmdet's converter: annotation ids start at **1** (each split numbered on from
there). mmdet's start at 0, and pycocotools' ``COCOeval`` records a detection's match as the
matched ground truth's id, 0 meaning "none": a detection matched to the annotation with id 0
counts as a false positive and that annotation as missed, in every split.

``ADE20KInstanceDataset`` (a ``CocoDataset``) picks categories by *name*: a category whose name is
not one of its 100 classes is dropped with its annotations, so the converter reports such names.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image

INSTANCE_FOLDER = 'annotations_instance'
IMAGE_FOLDER = 'images'
CATEGORY_FILE = 'imgCatIds.json'
MAPPING_FILE = 'categoryMapping.txt'
# (folder under images/ and annotations_instance/, tag in the output name)
ADE_INSTANCE_SPLITS: Tuple[Tuple[str, str], ...] = (('training', 'train'),
                                                     ('validation', 'val'))
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


def read_category_mapping(path: str) -> Dict[int, int]:
    """``categoryMapping.txt`` as {instance category id: 0-based SceneParsing150 index}.

    Args:
        path (str): the file: one header line, then lines whose first two whitespace-separated
            fields are the instance id and the 1-based SceneParsing150 id (further fields,
            e.g. a name, are ignored).

    Returns:
        dict[int, int]: the mapping.

    Raises:
        ValueError: a line that does not start with two integers, or an id given twice.
    """
    mapping: Dict[int, int] = {}
    with open(path) as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines[1:], start=2):  # the first line is the header
        fields = line.split()
        if not fields:
            continue
        try:
            instance_id, semantic_id = int(fields[0]), int(fields[1])
        except (ValueError, IndexError):
            raise ValueError(f'{path}:{number}: expected "<instance id> <SceneParsing150 id> '
                             f'...", got {line!r}') from None
        if instance_id in mapping:
            raise ValueError(f'{path}:{number}: instance category {instance_id} is mapped twice')
        mapping[instance_id] = semantic_id - 1
    return mapping


def read_categories(path: str, mapping: Dict[int, int]) -> List[dict]:
    """``imgCatIds.json``'s categories with their ids mapped to 0-based SceneParsing150 indices.

    Args:
        path (str): the ``imgCatIds.json`` file.
        mapping (dict[int, int]): from :func:`read_category_mapping`.

    Returns:
        list[dict]: the categories (their other keys kept), in the file's order.

    Raises:
        KeyError: a category that the mapping does not have.
    """
    with open(path) as f:
        categories = json.load(f)['categories']
    missing = [c['id'] for c in categories if c['id'] not in mapping]
    if missing:
        raise KeyError(f'{path}: categories {missing[:5]} are not in the category mapping')
    return [dict(c, id=mapping[c['id']]) for c in categories]


def instance_annotations(instance_map: np.ndarray, image_id: str, mapping: Dict[int, int],
                         first_id: int = 1, source: str = '') -> List[dict]:
    """The COCO annotations of one instance PNG.

    Args:
        instance_map (np.ndarray): the PNG's pixels, (H, W, 3) uint8 (R category, G instance).
        image_id (str): the image's id in the json.
        mapping (dict[int, int]): instance category id -> category id in the json.
        first_id (int): id of the first annotation; the next ones count up. Defaults to 1.
        source (str): the file, for error messages. Defaults to ``''``.

    Returns:
        list[dict]: one annotation per instance number, in increasing instance number.

    Raises:
        ValueError: the map is not (H, W, >=2) uint8, an instance spans two categories, or a
            category is not in the mapping.
    """
    if instance_map.ndim != 3 or instance_map.shape[2] < 2 or instance_map.dtype != np.uint8:
        raise ValueError(f'{source}: an instance PNG has uint8 channels (category, instance, '
                         f'...), got an array {instance_map.shape} {instance_map.dtype}')
    categories, instances = instance_map[..., 0], instance_map[..., 1]
    annotations = []
    for number in np.unique(instances):
        if number == 0:
            continue
        mask = instances == number
        cats = np.unique(categories[mask])
        if len(cats) != 1:
            raise ValueError(f'{source}: instance {number} has pixels of categories '
                             f'{cats.tolist()}; an instance has one category')
        if int(cats[0]) not in mapping:
            raise ValueError(f'{source}: instance {number} has category {int(cats[0])}, which '
                             f'the category mapping does not have')
        rows, cols = np.nonzero(mask)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        annotations.append({
            'id': first_id + len(annotations),
            'image_id': image_id,
            'category_id': mapping[int(cats[0])],
            'iscrowd': 0,
            'bbox': [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
                     int(rows.max() - rows.min() + 1)],
            'area': int(mask.sum()),
            'segmentation': rle,
        })
    return annotations


def _image_files(folder: str) -> List[str]:
    if not osp.isdir(folder):
        raise FileNotFoundError(f'no image folder {folder}')
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))


def unknown_category_names(categories: Iterable[dict]) -> List[str]:
    """Names that mmdet's ``ADE20KInstanceDataset`` does not know (it would drop them)."""
    from mmdet.datasets import ADE20KInstanceDataset
    known = set(ADE20KInstanceDataset.METAINFO['classes'])
    return [c['name'] for c in categories if c.get('name') not in known]


def convert_ade20k_instances(data_root: str, out_dir: Optional[str] = None,
                             splits: Sequence[Tuple[str, str]] = ADE_INSTANCE_SPLITS,
                             first_id: int = 1, progress: bool = False) -> Dict[str, str]:
    """Write ``ade20k_instance_{tag}.json`` for each split (see the module doc).

    Args:
        data_root (str): the ``ADEChallengeData2016`` folder.
        out_dir (str, optional): where the json files go. Defaults to None: ``data_root``
            (where ``configs/_base_/datasets/ade20k_instance.py`` reads them).
        splits (Sequence[tuple[str, str]]): (folder, tag) pairs. Defaults to training -> train
            and validation -> val.
        first_id (int): id of each split's first annotation. Defaults to 1.
        progress (bool): show a progress bar per split. Defaults to False.

    Returns:
        dict[str, str]: tag -> the json file written.

    Raises:
        FileNotFoundError: a folder, ``imgCatIds.json``, ``categoryMapping.txt`` or an image's
            instance PNG is missing.
        ValueError: see :func:`instance_annotations` and :func:`read_category_mapping`.
    """
    for name in (CATEGORY_FILE, MAPPING_FILE):
        if not osp.isfile(osp.join(data_root, name)):
            raise FileNotFoundError(f'{osp.join(data_root, name)} not found: it comes with the '
                                    'ADE20K instance annotations (annotations_instance/)')
    mapping = read_category_mapping(osp.join(data_root, MAPPING_FILE))
    categories = read_categories(osp.join(data_root, CATEGORY_FILE), mapping)
    out_dir = data_root if out_dir is None else out_dir
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for folder, tag in splits:
        image_dir = osp.join(data_root, IMAGE_FOLDER, folder)
        instance_dir = osp.join(data_root, INSTANCE_FOLDER, folder)
        files = _image_files(image_dir)
        if progress:
            from mmengine.utils import track_iter_progress
            files_iter = track_iter_progress(files)
        else:
            files_iter = files
        images, annotations = [], []
        for file_name in files_iter:
            stem = osp.splitext(file_name)[0]
            instance_path = osp.join(instance_dir, stem + '.png')
            if not osp.isfile(instance_path):
                raise FileNotFoundError(f'{instance_path} not found: every image of '
                                        f'{image_dir} needs its instance PNG')
            with Image.open(osp.join(image_dir, file_name)) as img:
                width, height = img.size  # the header only: no decoding
            instance_map = np.asarray(Image.open(instance_path))
            if instance_map.shape[:2] != (height, width):
                raise ValueError(f'{instance_path} is {instance_map.shape[1]}x'
                                 f'{instance_map.shape[0]}, its image {width}x{height}')
            images.append({'id': stem, 'file_name': file_name, 'height': height,
                           'width': width})
            annotations += instance_annotations(instance_map, stem, mapping,
                                                first_id + len(annotations), instance_path)
        path = osp.join(out_dir, f'ade20k_instance_{tag}.json')
        with open(path, 'w') as f:
            json.dump({'images': images, 'categories': categories,
                       'annotations': annotations}, f)
        written[tag] = path
    return written
