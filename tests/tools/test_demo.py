"""tools/demo.sh's pieces, without running the demo (nothing here trains): the recipe it derives
(``make_demo_config``), the untrained model's checkpoint it tests beside the trained one
(``tools/mini_config.py --init-checkpoint``) and the report of the two box APs."""
import json
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config

from visattn_mm.testing import mini_datasets as md
from visattn_mm.testing.mini_config import (DEMO_DATA, coco_test_metrics, demo_report,
                                            make_demo_config, make_mini_config)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'pslt_retinanet.py')


@pytest.fixture(scope='module')
def coco(tmp_path_factory) -> str:
    return md.make_coco(str(tmp_path_factory.mktemp('mini') / 'coco'), seed=0, num_train=8,
                        num_val=2, size=64)


@pytest.fixture
def keep_deterministic_flag():
    """A Runner with deterministic=True turns torch's deterministic mode on for the process."""
    flag = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(flag)


def _annotated(coco: str) -> tuple:
    with open(osp.join(coco, 'annotations', 'instances_train2017.json')) as f:
        data = json.load(f)
    used = {a['category_id'] for a in data['annotations']}
    return tuple(c['name'] for c in sorted(data['categories'], key=lambda c: c['id'])
                 if c['id'] in used)


def test_demo_config(coco):
    cfg = make_demo_config(CONFIG, coco, epochs=3)
    # deterministic: mmengine's deterministic mode, a seeded sampler, no worker processes
    assert cfg.randomness == dict(seed=0, deterministic=True)
    assert cfg.train_dataloader.sampler.seed == 0
    assert cfg.train_dataloader.num_workers == cfg.test_dataloader.num_workers == 0
    # the headline model: a RetinaNet on PSLT (its smallest arch), from scratch
    model = cfg.model
    assert model.type == 'RetinaNet' and model.bbox_head.type == 'RetinaHead'
    assert model.backbone.type == 'visattn_mm.PSLT' and model.backbone.arch == 'tiny'
    assert model.backbone.init_cfg is None and 'init_cfg' not in model
    assert model.neck.in_channels == [48, 96, 192, 384]
    # the classes the set annotates, in the file's order, in the datasets and the head
    classes = _annotated(coco)
    assert set(classes) <= set(md.MINI_COCO_CLASSES) and len(classes) >= 2
    for split in ('train', 'test'):
        assert cfg[f'{split}_dataloader'].dataset.metainfo.classes == classes
    assert model.bbox_head.num_classes == len(classes)
    # the real evaluator on the generated val set, every detection kept
    assert cfg.test_evaluator.type == 'CocoMetric'
    assert cfg.test_evaluator.ann_file == osp.join(coco, 'annotations', 'instances_val2017.json')
    assert model.test_cfg.score_thr == 0.0
    assert cfg.train_cfg.max_epochs == 3 and cfg.val_dataloader is None
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    # the images at their own size: the data are drawn at DEMO_DATA's size
    assert cfg.test_dataloader.dataset.pipeline[1].scale == (DEMO_DATA['size'],) * 2


def test_demo_model_builds_and_runs(coco):
    """The neck's input channels are those PSLT-tiny gives."""
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope

    import visattn_mm  # noqa: F401  (registers PSLT)
    cfg = make_demo_config(CONFIG, coco, epochs=1)
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = MODELS.build(cfg.model)
    model.eval()
    with torch.no_grad():
        cls_scores, _ = model._forward(torch.randn(1, 3, 64, 64))
    assert cls_scores[0].shape[1] == 9 * cfg.model.bbox_head.num_classes  # 9 anchors a place


def test_mini_config_deterministic_flag(coco):
    assert make_mini_config(CONFIG, coco, iters=2).randomness == dict(seed=0)
    cfg = make_mini_config(CONFIG, coco, iters=2, deterministic=True)
    assert cfg.randomness == dict(seed=0, deterministic=True)
    assert cfg.train_dataloader.sampler.seed == 0


def test_initial_checkpoint_is_where_training_starts(coco, tmp_path, monkeypatch,
                                                     keep_deterministic_flag):
    """tools/mini_config.py --demo --init-checkpoint: the checkpoint holds exactly the weights
    that a training run of the written config has at its first iteration."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    out, ckpt = str(tmp_path / 'mini.py'), str(tmp_path / 'untrained.pth')
    monkeypatch.setattr(sys, 'argv', ['mini_config.py', CONFIG, '--data-root', coco, '--out', out,
                                      '--demo', '--iters', '1', '--init-checkpoint', ckpt])
    runpy.run_path(osp.join(ROOT, 'tools', 'mini_config.py'), run_name='__main__')
    saved = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert saved['meta']['epoch'] == 0 and saved['meta']['iter'] == 0
    assert 'optimizer' not in saved

    class Stop(Exception):
        pass

    class Capture(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            self.state = {k: v.clone() for k, v in runner.model.state_dict().items()}
            raise Stop

    cfg = Config.fromfile(out)
    cfg.work_dir = str(tmp_path / 'train')
    runner = Runner.from_cfg(cfg)
    capture = Capture()
    runner.register_hook(capture)
    with pytest.raises(Stop):
        runner.train()
    assert saved['state_dict'].keys() == capture.state.keys()
    for key, value in capture.state.items():
        assert torch.equal(saved['state_dict'][key], value), key


def _test_log(ap: float, ap50: float, ap75: float) -> str:
    """The tail of a `mim test mmdet` log, as mmengine writes it."""
    return (
        '12/06 07:02:30 - mmengine - INFO - Load checkpoint from work_dirs/demo/untrained.pth\n'
        ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.123\n'
        f'12/06 07:02:45 - mmengine - INFO - Epoch(test) [32/32]    coco/bbox_mAP: {ap:.4f}  '
        f'coco/bbox_mAP_50: {ap50:.4f}  coco/bbox_mAP_75: {ap75:.4f}  coco/bbox_mAP_s: 0.1000  '
        'coco/bbox_mAP_m: 0.2000  coco/bbox_mAP_l: -1.0000  data_time: 0.0042  time: 0.1302\n')


def test_coco_test_metrics():
    metrics = coco_test_metrics(_test_log(0.6123, 0.95, 0.7))
    assert metrics['bbox_mAP'] == 0.6123 and metrics['bbox_mAP_l'] == -1.0
    assert coco_test_metrics('no test here\n') == {}


def test_demo_report(tmp_path, capsys):
    untrained, trained = tmp_path / 'untrained.log', tmp_path / 'trained.log'
    untrained.write_text(_test_log(0.0004, 0.0021, 0.0))
    trained.write_text(_test_log(0.6123, 0.9512, 0.7034))
    assert demo_report(str(untrained), str(trained), 'trained (20 epochs)') == 0
    out = capsys.readouterr().out
    assert 'AP     AP50   AP75' in out
    assert 'untrained (initialised, no training)' in out and '0.000  0.002  0.000' in out
    assert 'trained (20 epochs)' in out and '0.612  0.951  0.703' in out
    # a run that did not learn fails, and so does a log without the metric
    assert demo_report(str(trained), str(untrained)) == 1
    assert 'learned nothing' in capsys.readouterr().out
    (tmp_path / 'empty.log').write_text('Traceback ...\n')
    assert demo_report(str(untrained), str(tmp_path / 'empty.log')) == 1


def test_demo_script_is_deterministic_and_reports_both():
    with open(osp.join(ROOT, 'tools', 'demo.sh')) as f:
        script = f.read()
    assert 'export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"' in script
    assert '--demo' in script and '--init-checkpoint "$WORK/untrained.pth"' in script
    assert '--checkpoint "$WORK/untrained.pth"' in script and 'demo_report' in script
