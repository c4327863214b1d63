"""The generated mini datasets load with the real dataset classes and score with the real metrics.

Every set is written once per session into a temporary folder. Each format is checked by the
real reader (mmdet ``CocoDataset`` / ``ADE20KInstanceDataset`` / ``ReIDDataset``, mmseg
``ADE20KDataset``, mmpretrain ``ImageNet``) and scored by the real metric, once with the
ground truth as prediction (perfect score) and once with a wrong prediction (clearly lower).
"""
import hashlib
import json
import os
import os.path as osp
import runpy
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import visattn_mm.datasets.market1501 as market
from visattn_mm.testing import mini_datasets as md

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def roots(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp('mini')
    out = {
        'coco': md.make_coco(str(base / 'coco'), seed=0, num_train=6, num_val=6),
        'ade20k': md.make_ade20k(str(base / 'ade20k'), seed=0, num_train=4, num_val=6),
        'imagenet': md.make_imagenet(str(base / 'imagenet'), seed=0, num_train=6, num_val=4,
                                     size=64),
        'market1501': md.make_market1501(str(base / 'market1501'), seed=0),
    }
    market.convert_market1501(out['market1501'])
    return out


def _tree_digest(root: str) -> dict:
    digest = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = osp.join(dirpath, f)
            with open(path, 'rb') as fh:
                digest[osp.relpath(path, root)] = hashlib.sha1(fh.read()).hexdigest()
    return digest


@pytest.mark.parametrize('maker,kwargs', [
    (md.make_coco, dict(num_train=2, num_val=2, size=64)),
    (md.make_ade20k, dict(num_train=2, num_val=2, size=64)),
    (md.make_imagenet, dict(num_train=1, num_val=1, size=48)),
    (md.make_market1501, dict(num_train_ids=3, num_test_ids=3, num_distractors=1,
                              num_junk=1)),
])
def test_same_seed_same_files(tmp_path, maker, kwargs):
    a = _tree_digest(maker(str(tmp_path / 'a'), seed=3, **kwargs))
    b = _tree_digest(maker(str(tmp_path / 'b'), seed=3, **kwargs))
    c = _tree_digest(maker(str(tmp_path / 'c'), seed=4, **kwargs))
    assert a and a == b
    assert a != c


def _run_tool(monkeypatch, tool: str, *args: str) -> None:
    """Run ``python tools/<tool> ARGS`` in this process (the script itself, not its library)."""
    path = osp.join(ROOT, 'tools', tool)
    monkeypatch.setattr(sys, 'argv', [path, *args])
    runpy.run_path(path, run_name='__main__')


def test_cli(tmp_path, monkeypatch):
    _run_tool(monkeypatch, 'mini_datasets.py', 'imagenet', '--out', str(tmp_path),
              '--num-train', '1', '--num-val', '1', '--size', '40')
    assert osp.isfile(tmp_path / 'imagenet' / 'meta' / 'train.txt')
    _run_tool(monkeypatch, 'mini_datasets.py', 'market1501', '--out', str(tmp_path),
              '--num-train', '8', '--num-val', '3')
    with open(tmp_path / 'market1501' / 'meta' / 'train_pids.txt') as f:
        assert len(f.readlines()) == 8
    # the converter's own command line, into another folder
    _run_tool(monkeypatch, 'dataset_converters/market1501_to_reid.py',
              str(tmp_path / 'market1501'), '--out-dir', 'meta2')
    for name in ('train', 'train_pids', 'query', 'gallery', 'test'):
        with open(tmp_path / 'market1501' / 'meta' / f'{name}.txt') as a, \
                open(tmp_path / 'market1501' / 'meta2' / f'{name}.txt') as b:
            assert a.read() == b.read(), name


def test_mini_config_cli(roots, tmp_path, monkeypatch):
    from mmengine.config import Config
    out = str(tmp_path / 'mini.py')
    _run_tool(monkeypatch, 'mini_config.py', osp.join(ROOT, 'configs', 'pslt_retinanet.py'),
              '--data-root', roots['coco'], '--out', out, '--iters', '2', '--scale', '160',
              '128', '--batch-size', '4', '--no-val')
    cfg = Config.fromfile(out)
    assert cfg.train_cfg.max_epochs == 2 and cfg.val_dataloader is None
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.train_dataloader.dataset.data_root == osp.join(roots['coco'], '')
    # the mini set lists all 80 COCO categories, as the real file does
    assert len(cfg.train_dataloader.dataset.metainfo.classes) == len(md.COCO_CATEGORIES)
    assert cfg.model.bbox_head.num_classes == len(md.COCO_CATEGORIES)
    assert cfg.model.test_cfg.score_thr == 0.0


# --------------------------------------------------------------------------------------------
# COCO and ADE20K instances (mmdet CocoDataset / ADE20KInstanceDataset + CocoMetric)
# --------------------------------------------------------------------------------------------


def _det_dataset(cls, root, ann_file, img_prefix, **kwargs):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
    return cls(data_root=root, ann_file=ann_file, data_prefix=dict(img=img_prefix),
               test_mode=True, pipeline=[
                   LoadImageFromFile(),
                   LoadAnnotations(with_bbox=True, with_mask=True),
                   PackDetInputs(meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape'))],
               **kwargs)


def _coco_score(dataset, ann_file, corrupt=False):
    """CocoMetric with each image's ground truth (optionally corrupted) as prediction."""
    from mmdet.evaluation import CocoMetric
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    metric.dataset_meta = dataset.metainfo
    num_classes = len(dataset.metainfo['classes'])
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        gt = sample.gt_instances
        bboxes, labels = gt.bboxes.tensor.clone(), gt.labels.clone()
        masks = gt.masks.to_tensor(torch.bool, 'cpu')
        assert masks.shape[1:] == tuple(sample.ori_shape)
        if corrupt:  # every other object: wrong class, box and mask shifted by half a box
            labels[::2] = (labels[::2] + 1) % num_classes
            shift = (bboxes[:, 2] - bboxes[:, 0]) / 2
            bboxes[1::2, 0::2] += shift[1::2, None]
            masks[1::2] = torch.roll(masks[1::2], shifts=8, dims=2)
        metric.process({}, [dict(img_id=sample.img_id, ori_shape=sample.ori_shape,
                                 pred_instances=dict(bboxes=bboxes, labels=labels,
                                                     scores=torch.ones(len(labels)),
                                                     masks=masks))])
    return metric.evaluate(len(dataset))


def test_coco_format(roots):
    from mmdet.datasets import CocoDataset
    with open(osp.join(roots['coco'], 'annotations', 'instances_val2017.json')) as f:
        ann = json.load(f)
    assert set(ann) == {'info', 'licenses', 'images', 'annotations', 'categories'}
    assert tuple(c['name'] for c in ann['categories']) == CocoDataset.METAINFO['classes']
    assert len({c['id'] for c in ann['categories']}) == 80
    images = {im['id']: im for im in ann['images']}
    for im in ann['images']:
        path = osp.join(roots['coco'], 'val2017', im['file_name'])
        assert im['file_name'] == f"{im['id']:012d}.jpg"
        assert Image.open(path).size == (im['width'], im['height'])
    assert {a['category_id'] for a in ann['annotations']} <= \
        {c[0] for c in md.COCO_CATEGORIES if c[1] in md.MINI_COCO_CLASSES}
    crowds = [a for a in ann['annotations'] if a['iscrowd']]
    assert len(crowds) == 1 and isinstance(crowds[0]['segmentation']['counts'], list)
    for a in ann['annotations']:
        x, y, w, h = a['bbox']
        im = images[a['image_id']]
        assert a['area'] > 0 and w > 0 and h > 0 and a['id'] > 0
        assert x >= 0 and y >= 0 and x + w <= im['width'] and y + h <= im['height']


@pytest.mark.parametrize('mini_classes', [False, True])
def test_coco_dataset_and_metric(roots, mini_classes):
    from mmdet.datasets import CocoDataset
    kwargs = dict(metainfo=dict(classes=md.MINI_COCO_CLASSES)) if mini_classes else {}
    ann_file = 'annotations/instances_val2017.json'
    dataset = _det_dataset(CocoDataset, roots['coco'], ann_file, 'val2017/', **kwargs)
    assert len(dataset) == 6
    label_names = {dataset.metainfo['classes'][inst['bbox_label']]
                   for i in range(len(dataset))
                   for inst in dataset.get_data_info(i)['instances']}
    assert label_names <= set(md.MINI_COCO_CLASSES) and len(label_names) >= 3
    # the crowd region is loaded as an ignored instance
    assert dataset[0]['data_samples'].ignored_instances.bboxes.shape[0] == 1

    perfect = _coco_score(dataset, osp.join(roots['coco'], ann_file))
    assert perfect['coco/bbox_mAP'] == pytest.approx(1.0)
    assert perfect['coco/segm_mAP'] == pytest.approx(1.0)
    wrong = _coco_score(dataset, osp.join(roots['coco'], ann_file), corrupt=True)
    assert wrong['coco/bbox_mAP'] < 0.6 and wrong['coco/segm_mAP'] < 0.6


def test_coco_train_split_loads(roots):
    from mmdet.datasets import CocoDataset
    dataset = CocoDataset(data_root=roots['coco'],
                          ann_file='annotations/instances_train2017.json',
                          data_prefix=dict(img='train2017/'),
                          filter_cfg=dict(filter_empty_gt=True, min_size=8), pipeline=[])
    assert len(dataset) == 6
    assert all(osp.isfile(dataset.get_data_info(i)['img_path']) for i in range(len(dataset)))


def test_ade20k_instance_dataset_and_metric(roots):
    from mmdet.datasets import ADE20KInstanceDataset
    with open(osp.join(roots['ade20k'], 'ade20k_instance_val.json')) as f:
        ann = json.load(f)
    assert set(ann) == {'images', 'annotations', 'categories'}
    assert tuple(c['name'] for c in ann['categories']) == \
        ADE20KInstanceDataset.METAINFO['classes']
    dataset = _det_dataset(ADE20KInstanceDataset, roots['ade20k'], 'ade20k_instance_val.json',
                           'images/validation')
    assert len(dataset) == 6 and isinstance(dataset[0]['data_samples'].img_id, str)
    ann_file = osp.join(roots['ade20k'], 'ade20k_instance_val.json')
    perfect = _coco_score(dataset, ann_file)
    assert perfect['coco/bbox_mAP'] == pytest.approx(1.0)
    assert perfect['coco/segm_mAP'] == pytest.approx(1.0)
    wrong = _coco_score(dataset, ann_file, corrupt=True)
    assert wrong['coco/bbox_mAP'] < 0.6 and wrong['coco/segm_mAP'] < 0.6


def test_ade20k_instances_match_semantic_maps(roots):
    """Each instance mask is exactly the pixels of its class in the semantic PNG."""
    from pycocotools.coco import COCO
    coco = COCO(osp.join(roots['ade20k'], 'ade20k_instance_val.json'))
    num = 0
    for img_id in coco.getImgIds():  # str ids, as in the real files: wrap them in lists
        info = coco.imgs[img_id]
        sem = np.array(Image.open(osp.join(roots['ade20k'], 'annotations', 'validation',
                                           f'{img_id}.png')))
        covered = np.zeros(sem.shape, bool)
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[img_id])):
            m = coco.annToMask(a).astype(bool)
            assert m.shape == (info['height'], info['width'])
            assert (sem[m] == a['category_id'] + 1).all()
            assert not (covered & m).any()
            covered |= m
            num += 1
        thing_values = [md.ADE150_CLASSES.index(n) + 1 for n in md.MINI_ADE_THING_CLASSES]
        assert not (np.isin(sem, thing_values) & ~covered).any()
    assert num >= 6


def test_ade_class_tables_match_libraries():
    from mmdet.datasets import ADE20KInstanceDataset
    from mmseg.datasets import ADE20KDataset
    assert md.ADE150_CLASSES == tuple(c.strip() for c in ADE20KDataset.METAINFO['classes'])
    assert md.ADE_THING_CLASSES == ADE20KInstanceDataset.METAINFO['classes']


# --------------------------------------------------------------------------------------------
# ADE20K semantic (mmseg ADE20KDataset + IoUMetric)
# --------------------------------------------------------------------------------------------


def test_ade20k_semantic_dataset_and_metric(roots):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import ADE20KDataset
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
    from mmseg.evaluation import IoUMetric
    dataset = ADE20KDataset(
        data_root=roots['ade20k'],
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=[LoadImageFromFile(), LoadAnnotations(), PackSegInputs()])
    assert len(dataset) == 6 and dataset.reduce_zero_label

    def score(corrupt: bool) -> dict:
        metric = IoUMetric(iou_metrics=['mIoU'])
        metric.dataset_meta = dataset.metainfo
        for i in range(len(dataset)):
            out = dataset[i]
            gt = out['data_samples'].gt_sem_seg.data
            assert gt.shape[-2:] == out['inputs'].shape[-2:]
            values = set(torch.unique(gt).tolist())
            assert values <= set(range(150)) | {255} and len(values - {255}) >= 2
            pred = torch.zeros_like(gt) if corrupt else gt.clone()
            metric.process({}, [dict(pred_sem_seg=dict(data=pred),
                                     gt_sem_seg=dict(data=gt))])
        return metric.evaluate(len(dataset))

    assert score(False)['mIoU'] == pytest.approx(100.0)
    assert score(True)['mIoU'] < 30.0


def test_ade20k_names_and_values(roots):
    for folder, tag in md.ADE_SPLITS:
        names = sorted(os.listdir(osp.join(roots['ade20k'], 'images', folder)))
        assert names[0] == f'ADE_{tag}_00000001.jpg'
        for name in names:
            png = Image.open(osp.join(roots['ade20k'], 'annotations', folder,
                                      name.replace('.jpg', '.png')))
            assert png.mode == 'L'
            assert png.size == Image.open(osp.join(roots['ade20k'], 'images', folder,
                                                   name)).size
            assert int(np.array(png).max()) <= 150


# --------------------------------------------------------------------------------------------
# ImageNet (mmpretrain ImageNet + Accuracy)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize('mini_classes', [False, True])
def test_imagenet_dataset_and_accuracy(roots, mini_classes):
    from mmcv.transforms import LoadImageFromFile
    from mmpretrain.datasets import ImageNet
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    from mmpretrain.datasets.transforms import PackInputs
    from mmpretrain.evaluation import Accuracy
    assert md.IMAGENET_MINI_CLASSES == tuple(IMAGENET_CATEGORIES[:5])
    kwargs = dict(metainfo=dict(classes=md.IMAGENET_MINI_CLASSES)) if mini_classes else {}
    train = ImageNet(data_root=roots['imagenet'], split='train', **kwargs)
    val = ImageNet(data_root=roots['imagenet'], split='val',
                   pipeline=[LoadImageFromFile(), PackInputs()], **kwargs)
    assert len(train) == 30 and len(val) == 20
    assert len(val.metainfo['classes']) == (5 if mini_classes else 1000)
    assert sorted(set(train.get_gt_labels().tolist())) == [0, 1, 2, 3, 4]
    first = train.get_data_info(0)['img_path']
    assert first.endswith('train/n01440764/' + osp.basename(first))
    sample = val[0]['data_samples']
    assert sample.gt_label.item() == val.get_gt_labels()[0]

    def accuracy(shift: int) -> float:
        metric = Accuracy(topk=(1, ))
        metric.dataset_meta = val.metainfo
        for label in val.get_gt_labels().tolist():
            metric.process({}, [dict(pred_label=torch.tensor([(label + shift) % 5]),
                                     gt_label=torch.tensor([label]))])
        return metric.evaluate(len(val))['accuracy/top1']

    assert accuracy(0) == pytest.approx(100.0)
    assert accuracy(1) == pytest.approx(0.0)


def _object_colour_histogram(path: str) -> np.ndarray:
    """Colour histogram of the saturated (object) pixels; backgrounds are greyish."""
    img = np.asarray(Image.open(path).convert('RGB'), dtype=np.float64)
    sat = (img.max(-1) - img.min(-1)) / np.maximum(img.max(-1), 1)
    codes = (img[sat > 0.4] // 64).astype(np.int64) @ np.array([16, 4, 1])
    return np.bincount(codes, minlength=64) / max(len(codes), 1)


def test_imagenet_classes_are_learnable(roots):
    """Even a nearest-centroid classifier on object colours separates the classes."""
    from mmpretrain.datasets import ImageNet
    train = ImageNet(data_root=roots['imagenet'], split='train')
    val = ImageNet(data_root=roots['imagenet'], split='val')

    def feats(ds):
        return np.stack([_object_colour_histogram(ds.get_data_info(i)['img_path'])
                         for i in range(len(ds))]), ds.get_gt_labels()

    xt, yt = feats(train)
    xv, yv = feats(val)
    centroids = np.stack([xt[yt == c].mean(0) for c in range(5)])
    pred = np.argmin(((xv[:, None] - centroids[None]) ** 2).sum(-1), 1)
    assert (pred == yv).mean() >= 0.9, (pred, yv)


# --------------------------------------------------------------------------------------------
# Market-1501 (converter -> mmdet ReIDDataset -> Market1501Metric)
# --------------------------------------------------------------------------------------------


def test_market_layout(roots):
    root = roots['market1501']
    parsed = {f: [market.parse_market_name(n) for n in os.listdir(osp.join(root, f))]
              for f in (market.TRAIN_FOLDER, market.GALLERY_FOLDER, market.QUERY_FOLDER)}
    train_ids = {n.pid for n in parsed[market.TRAIN_FOLDER]}
    gallery_ids = {n.pid for n in parsed[market.GALLERY_FOLDER]}
    assert {0, -1} <= gallery_ids and not train_ids & gallery_ids
    assert all(1 <= n.camera <= 6 for names in parsed.values() for n in names)
    for q in parsed[market.QUERY_FOLDER]:
        same_id = [g for g in parsed[market.GALLERY_FOLDER] if g.pid == q.pid]
        assert any(g.camera != q.camera for g in same_id)
    for f in os.listdir(osp.join(root, market.QUERY_FOLDER)):
        assert Image.open(osp.join(root, market.QUERY_FOLDER, f)).size == (64, 128)
    junk = [f for f in os.listdir(osp.join(root, market.GALLERY_FOLDER)) if f.startswith('-1_')]
    assert junk and all(f.startswith('-1_c') for f in junk)


def test_market_name_parsing():
    assert market.parse_market_name('0002_c1s1_000451_03.jpg') == (2, 1, 1, 451, 3)
    assert market.parse_market_name('x/-1_c3s2_000401_03.jpg').pid == -1
    with pytest.raises(ValueError, match='PPPP_cCsS_FFFFFF_NN.jpg'):
        market.parse_market_name('0002_c1_000451.jpg')


def test_converter_output(roots):
    meta = osp.join(roots['market1501'], 'meta')

    def read(name):
        with open(osp.join(meta, name)) as f:
            return [line.split() for line in f.read().splitlines()]

    train = read('train.txt')
    labels = sorted({int(p) for _, p in train})
    assert labels == list(range(12))
    assert all(p.startswith(market.TRAIN_FOLDER + '/') for p, _ in train)
    query, gallery, test = read('query.txt'), read('gallery.txt'), read('test.txt')
    assert test == query + gallery
    for path, pid in test:  # original ids kept
        assert market.parse_market_name(path).pid == int(pid)
    assert {int(p) for _, p in gallery} >= {0, -1}


def _reid_dataset(root, ann_file, train=False, **kwargs):
    """ReIDDataset with the pipelines of mmdet's reid config, at Market's own 128x64."""
    from mmcv.transforms import LoadImageFromFile, Resize, TransformBroadcaster
    from mmdet.datasets import ReIDDataset
    from mmdet.datasets.transforms import PackReIDInputs
    load = [LoadImageFromFile(to_float32=True), Resize(scale=(64, 128), keep_ratio=False)]
    if train:  # the triplet sampler hands the pipeline lists of 32 images
        pipeline = [TransformBroadcaster(transforms=load, share_random_params=False),
                    PackReIDInputs()]
    else:
        pipeline = load + [PackReIDInputs()]
    return ReIDDataset(data_root=root, ann_file=ann_file, data_prefix=dict(img_path=''),
                       pipeline=pipeline, **kwargs)


def test_reid_dataset_trains_with_triplet_sampler(roots):
    dataset = _reid_dataset(roots['market1501'], 'meta/train.txt', train=True,
                            triplet_sampler=dict(num_ids=8, ins_per_id=4))
    assert sorted(dataset.pids.tolist()) == list(range(12))
    out = dataset[0]
    assert tuple(out['inputs'].shape) == (32, 3, 128, 64)
    assert out['data_samples'].gt_label.label.shape == (32, )


def _market_score(roots, feature_fn) -> dict:
    from visattn_mm.evaluation import Market1501Metric
    dataset = _reid_dataset(roots['market1501'], 'meta/test.txt')
    metric = Market1501Metric()
    for i in range(len(dataset)):
        out = dataset[i]
        sample = out['data_samples']
        sample.pred_feature = torch.as_tensor(feature_fn(sample, out['inputs']),
                                              dtype=torch.float32)
        metric.process({}, [sample.to_dict()])
    return metric.evaluate(len(dataset))


def test_reid_dataset_and_market_metric(roots):
    with open(osp.join(roots['market1501'], 'meta', 'test.txt')) as f:
        all_pids = sorted({int(line.split()[1]) for line in f})

    def identity_feature(sample, _):  # one-hot of the stored (original) id
        feat = np.zeros(len(all_pids))
        feat[all_pids.index(int(sample.gt_label.label))] = 1.0
        return feat

    perfect = _market_score(roots, identity_feature)
    assert perfect == {'market1501/mAP': 1.0, 'market1501/R1': 1.0, 'market1501/R5': 1.0,
                       'market1501/R10': 1.0}
    rng = np.random.default_rng(0)
    random = _market_score(roots, lambda s, _: rng.normal(size=16))
    assert random['market1501/mAP'] < 0.5


def test_market_identities_are_learnable(roots):
    """Mean colours of the shirt and trousers regions already re-identify well."""

    def colour_feature(_, inputs):
        img = inputs[0] / 255.0  # (3, 128, 64), BGR
        return torch.cat([img[:, 30:60, 22:42].mean((1, 2)), img[:, 75:110, 24:40].mean((1, 2)),
                          img[:, 30:60, 22:42].std((1, 2))]).numpy()

    res = _market_score(roots, colour_feature)
    assert res['market1501/mAP'] > 0.6 and res['market1501/R1'] > 0.7
