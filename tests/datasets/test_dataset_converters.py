"""tools/dataset_converters/ade20k_to_coco_instances.py (visattn_mm.datasets.ade20k).

A mini copy of the raw on-disk layout (ADEChallengeData2016 images, the instance challenge's
3-channel PNGs, ``imgCatIds.json``, ``categoryMapping.txt``) with hand-made instances whose
masks, boxes, areas and categories are known; the json must load in pycocotools and mmdet's
``ADE20KInstanceDataset``, number annotations from 1, and score AP 1 against itself (which the
same file numbered from 0, as mmdet's converter writes it, does not).

The Market-1501 converter's command line is run by tests/datasets/test_mini_datasets.py::test_cli.
"""
import contextlib
import io
import json
import os
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visattn_mm.datasets.ade20k import (convert_ade20k_instances, instance_annotations,
                                        read_category_mapping)
from visattn_mm.testing.mini_datasets import ADE150_CLASSES, ADE_THING_CLASSES

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def instance_category(name: str) -> int:
    """The instance challenge's id of a thing class (1..100, in mmdet's class order)."""
    return ADE_THING_CLASSES.index(name) + 1


def semantic_index(name: str) -> int:
    """Its 0-based SceneParsing150 index: the category id in the json."""
    return ADE150_CLASSES.index(name)


def blank(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w, 3), np.uint8)


def paint(inst: np.ndarray, mask: np.ndarray, name: str, number: int) -> None:
    inst[mask, 0] = instance_category(name)
    inst[mask, 1] = number


def hand_made():
    """{folder: [(stem, instance map, {number: (name, mask)})]}."""
    a = blank(12, 16)
    bed = np.zeros((12, 16), bool)
    bed[2:6, 3:9] = True                        # 4 x 6 = 24 px, bbox [3, 2, 6, 4]
    person = np.zeros((12, 16), bool)
    person[6:11, 10] = True
    person[10, 10:15] = True                    # an L: 5 + 4 = 9 px, bbox [10, 6, 5, 5]
    car = np.zeros((12, 16), bool)
    car[0, 0] = True                            # one pixel, bbox [0, 0, 1, 1]
    for number, (name, mask) in {1: ('bed', bed), 2: ('person', person),
                                 3: ('car', car)}.items():
        paint(a, mask, name, number)
    b = blank(8, 10)                            # no instance
    b[..., 2] = 7                               # (the unused channel is ignored)
    c = blank(10, 10)
    ball = np.zeros((10, 10), bool)
    ball[3:7, 4:8] = True
    ball[3, 4] = False                          # 15 px, bbox [4, 3, 4, 4]
    paint(c, ball, 'ball', 5)                   # instance numbers need not be 1..n
    return {
        'training': [('ADE_train_00000001', a, {1: ('bed', bed), 2: ('person', person),
                                                3: ('car', car)}),
                     ('ADE_train_00000002', b, {})],
        'validation': [('ADE_val_00000001', c, {5: ('ball', ball)})],
    }


def write_raw_ade(root: str, scenes) -> str:
    """The raw layout mmdet's ade20k2coco.py reads, for the given instance maps."""
    rng = np.random.default_rng(0)
    for folder, items in scenes.items():
        for stem, inst, _ in items:
            h, w = inst.shape[:2]
            for sub, ext, pixels in (('images', '.jpg', rng.integers(0, 255, (h, w, 3))),
                                     ('annotations_instance', '.png', inst)):
                os.makedirs(osp.join(root, sub, folder), exist_ok=True)
                Image.fromarray(pixels.astype(np.uint8)).save(
                    osp.join(root, sub, folder, stem + ext))
    with open(osp.join(root, 'imgCatIds.json'), 'w') as f:
        json.dump({'images': [], 'categories': [{'id': i + 1, 'name': name} for i, name in
                                                enumerate(ADE_THING_CLASSES)]}, f)
    with open(osp.join(root, 'categoryMapping.txt'), 'w') as f:
        f.write('Instacne100\tSceneParsing150\tFullADE20K\n')
        for i, name in enumerate(ADE_THING_CLASSES):
            f.write(f'{i + 1}\t{semantic_index(name) + 1}\t{1000 + i}\n')
    return root


@pytest.fixture
def raw_root(tmp_path):
    return write_raw_ade(str(tmp_path / 'ADEChallengeData2016'), hand_made())


def test_converted_annotations_are_the_hand_made_ones(raw_root):
    written = convert_ade20k_instances(raw_root)
    assert written == {tag: osp.join(raw_root, f'ade20k_instance_{tag}.json')
                       for tag in ('train', 'val')}
    for folder, tag in (('training', 'train'), ('validation', 'val')):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(written[tag])
        items = hand_made()[folder]
        assert sorted(coco.getImgIds()) == [stem for stem, _, _ in items]
        ann_ids = coco.getAnnIds()
        assert ann_ids == list(range(1, len(ann_ids) + 1))  # from 1, per split
        assert len(ann_ids) == sum(len(objects) for _, _, objects in items)
        for stem, inst, objects in items:
            img = coco.loadImgs([stem])[0]
            assert (img['height'], img['width'], img['file_name']) == \
                (*inst.shape[:2], stem + '.jpg')
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[stem]))
            assert len(anns) == len(objects)
            for ann, (name, mask) in zip(anns, objects.values()):  # by instance number
                rows, cols = np.nonzero(mask)
                assert ann['category_id'] == semantic_index(name)
                assert coco.loadCats(ann['category_id'])[0]['name'] == name
                assert ann['area'] == mask.sum() and ann['iscrowd'] == 0
                assert ann['bbox'] == [cols.min(), rows.min(), np.ptp(cols) + 1,
                                       np.ptp(rows) + 1]
                np.testing.assert_array_equal(coco.annToMask(ann), mask)
    train = json.load(open(written['train']))
    assert [a['bbox'] for a in train['annotations']] == \
        [[3, 2, 6, 4], [10, 6, 5, 5], [0, 0, 1, 1]]
    assert [a['area'] for a in train['annotations']] == [24, 9, 1]
    assert [c['id'] for c in train['categories']] == \
        [semantic_index(n) for n in ADE_THING_CLASSES]


def _self_ap(ann_file: str, iou_type: str) -> float:
    """AP of the ground truth scored against itself (every instance detected exactly)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dets = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'],
                     segmentation=a['segmentation'], score=1.0) for a in gt.dataset['annotations']]
        evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return float(evaluator.stats[0])


def test_ids_from_one_score_what_ids_from_zero_lose(raw_root, tmp_path):
    # one image, one category per instance: the first-numbered one decides
    path = convert_ade20k_instances(raw_root)['train']
    for iou_type in ('bbox', 'segm'):
        assert _self_ap(path, iou_type) == pytest.approx(1.0)
    data = json.load(open(path))
    for ann in data['annotations']:
        ann['id'] -= 1  # mmdet's ade20k2coco.py numbering
    zero = str(tmp_path / 'from_zero.json')
    json.dump(data, open(zero, 'w'))
    assert _self_ap(zero, 'segm') < 0.99  # the bed (id 0) counts as missed


def test_mmdet_ade20k_instance_dataset_reads_it(raw_root):
    from mmdet.datasets import ADE20KInstanceDataset
    convert_ade20k_instances(raw_root)
    dataset = ADE20KInstanceDataset(data_root=raw_root, ann_file='ade20k_instance_train.json',
                                    data_prefix=dict(img='images/training'), pipeline=[],
                                    filter_cfg=None)
    classes = ADE20KInstanceDataset.METAINFO['classes']
    by_image = {osp.basename(d['img_path']): d
                for d in map(dataset.get_data_info, range(len(dataset)))}
    first = by_image['ADE_train_00000001.jpg']
    assert [classes[i['bbox_label']] for i in first['instances']] == ['bed', 'person', 'car']
    assert first['instances'][0]['bbox'] == [3, 2, 9, 6]  # x1, y1, x2, y2
    assert by_image['ADE_train_00000002.jpg']['instances'] == []


def test_category_mapping_and_errors(raw_root, tmp_path):
    path = str(tmp_path / 'mapping.txt')
    with open(path, 'w') as f:
        f.write('Instance100 SceneParsing150 name\n26 45 chest of drawers\n\n1 8 bed\n')
    assert read_category_mapping(path) == {26: 44, 1: 7}
    with open(path, 'a') as f:
        f.write('bed 8\n')
    with pytest.raises(ValueError, match='expected'):
        read_category_mapping(path)

    mixed = blank(4, 4)
    mixed[0, :2] = (instance_category('bed'), 1, 0)
    mixed[1, :2] = (instance_category('car'), 1, 0)
    with pytest.raises(ValueError, match='one category'):
        instance_annotations(mixed, 'x', {1: 7, 9: 20})
    with pytest.raises(ValueError, match='does not have'):
        instance_annotations(mixed[:1], 'x', {9: 20})

    os.remove(osp.join(raw_root, 'annotations_instance', 'validation', 'ADE_val_00000001.png'))
    with pytest.raises(FileNotFoundError, match='ADE_val_00000001.png'):
        convert_ade20k_instances(raw_root)


def test_cli(raw_root, tmp_path, monkeypatch, capsys):
    path = osp.join(ROOT, 'tools', 'dataset_converters', 'ade20k_to_coco_instances.py')
    out = str(tmp_path / 'out')
    monkeypatch.setattr(sys, 'argv', [path, raw_root, '--out-dir', out, '--splits',
                                      'validation:val', '--no-progress'])
    runpy.run_path(path, run_name='__main__')
    assert '(1 images, 1 annotations)' in capsys.readouterr().out
    assert os.listdir(out) == ['ade20k_instance_val.json']
    lib = convert_ade20k_instances(raw_root, str(tmp_path / 'lib'), [('validation', 'val')])
    with open(lib['val']) as a, open(osp.join(out, 'ade20k_instance_val.json')) as b:
        assert json.load(a) == json.load(b)
