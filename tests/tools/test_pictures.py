"""tools/visualize.py CONFIG CHECKPOINT IMAGE on tiny checkpoints, and the configs that
tools/analysis/draw_pictures.py trains (built and drawn here, not trained)."""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

pytestmark = pytest.mark.usefixtures('one_thread')  # (conftest.py)


def _tool(name: str, folder: str = 'tools'):
    sys.path.insert(0, osp.join(ROOT, folder))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


@pytest.fixture(scope='module')
def visualize():
    return _tool('visualize')


@pytest.fixture
def image(tmp_path) -> str:
    """A 64x64 grey picture with an orange disc (what the mini set looks like)."""
    rng = np.random.RandomState(0)
    img = np.clip(130 + rng.randn(64, 64, 3) * 6, 0, 255).astype(np.uint8)
    cv2.circle(img, (24, 36), 14, (20, 140, 245), -1)  # BGR
    path = str(tmp_path / 'disc.png')
    cv2.imwrite(path, img)
    return path


TINY_PSLT = '''_base_ = [{base!r}]
model = dict(
    backbone=dict(arch=dict(_delete_=True, embed_dims=6, depths=(1, 1, 2, 1), num_heads=(2, 2),
                            window_size=2),
                  drop_path_rate=0.0),
    head=dict(num_classes=5, in_channels=96))
'''


@pytest.fixture
def tiny_config(tmp_path) -> str:
    """A classification config with a tiny PSLT (stage 3 of a 64 px image: 4x4 tokens in 2x2
    windows) and a 5-class head."""
    path = tmp_path / 'tiny_pslt.py'
    path.write_text(TINY_PSLT.format(base=osp.join(ROOT, 'configs/pslt/pslt-tiny_8xb128_in1k.py')))
    return str(path)


def _checkpoint(config: str, path: str, seed: int) -> str:
    """The config's model initialised with ``seed`` (init_weights), saved as a checkpoint."""
    from visattn_mm.visualization import build_model_from_config
    torch.manual_seed(seed)
    model = build_model_from_config(config)
    model.init_weights()
    torch.save({'state_dict': model.state_dict(), 'meta': {'seed': seed}}, path)
    return path


def test_config_checkpoint_image_form(visualize, tiny_config, image, tmp_path):
    """The positional form writes one PNG per kind where --out says, and the picture follows
    the weights: two checkpoints give two different pictures, one checkpoint twice the same."""
    first = _checkpoint(tiny_config, str(tmp_path / 'a.pth'), seed=1)
    second = _checkpoint(tiny_config, str(tmp_path / 'b.pth'), seed=2)
    pictures = {}
    for name, ckpt in (('a', first), ('b', second), ('a_again', first)):
        out = str(tmp_path / f'{name}.png')
        written = visualize.main([tiny_config, ckpt, image, '--out', out, '--size', '64',
                                  '--kind', 'ladder'])
        assert written == [out] and osp.isfile(out)
        pictures[name] = cv2.imread(out)
        assert pictures[name] is not None and pictures[name].std() > 1
    assert pictures['a'].shape == pictures['b'].shape
    assert np.array_equal(pictures['a'], pictures['a_again'])
    assert np.abs(pictures['a'].astype(int) - pictures['b'].astype(int)).mean() > 1

    # every kind of the family into a folder, named as --out-dir names them
    written = visualize.main([tiny_config, first, image, '--out', str(tmp_path / 'all'),
                              '--size', '64'])
    assert [osp.basename(p) for p in written] == ['tiny_pslt_pslt_ladder.png',
                                                  'tiny_pslt_pslt_branch.png']
    # several kinds into FILE.png: FILE_<kind>.png
    written = visualize.main([tiny_config, first, image, '--out', str(tmp_path / 'k.png'),
                              '--size', '64'])
    assert [osp.basename(p) for p in written] == ['k_ladder.png', 'k_branch.png']


def test_the_forms_agree_and_bad_input_is_refused(visualize, tiny_config, image, tmp_path):
    ckpt = _checkpoint(tiny_config, str(tmp_path / 'a.pth'), seed=1)
    (new,) = visualize.main([tiny_config, ckpt, image, '--out', str(tmp_path / 'new.png'),
                             '--size', '64', '--kind', 'branch'])
    (old,) = visualize.main([tiny_config, '--checkpoint', ckpt, image, '--out-dir',
                             str(tmp_path / 'old'), '--size', '64', '--kind', 'branch'])
    assert np.array_equal(cv2.imread(new), cv2.imread(old))
    with pytest.raises(SystemExit):  # a checkpoint both ways
        visualize.parse_args([tiny_config, ckpt, image, '--checkpoint', ckpt])
    with pytest.raises(SystemExit):  # too many paths
        visualize.parse_args([tiny_config, ckpt, image, image])
    other = tmp_path / 'other.pth'  # weights of another model: an error, not random weights
    torch.save({'state_dict': {'backbone.nothing': torch.zeros(1)}}, str(other))
    with pytest.raises((RuntimeError, KeyError)):
        visualize.main([tiny_config, str(other), image, '--out', str(tmp_path / 'x.png'),
                        '--size', '64'])


def test_draw_pictures_configs_build_and_draw(visualize, image, tmp_path):
    """Each family's short-run config (what draw_pictures.py trains) is written, builds the
    stated small arch with a 5-class head, and tools/visualize.py draws it from a checkpoint;
    the composed trained-vs-random picture is written from two checkpoints (no training)."""
    draw = _tool('draw_pictures', 'tools/analysis')
    from visattn_mm.visualization import build_model_from_config, load_config
    data_root = str(tmp_path / 'data')  # (not read: nothing is trained or evaluated)
    for family in ('bvit', 'dense'):  # the two fastest to build
        cfg = draw.picture_config(family, data_root, str(tmp_path / 'work'))
        assert cfg.model.head.num_classes == 5
        assert cfg.train_cfg.max_iters == draw.FAMILIES[family]['iters']
        path = str(tmp_path / f'{family}.py')
        cfg.dump(path)
        loaded = load_config(path)
        assert loaded.model.backbone.arch == draw.FAMILIES[family]['backbone']['arch']
        ckpt = _checkpoint(path, str(tmp_path / f'{family}.pth'), seed=0)
        (png,) = visualize.main([path, ckpt, image, '--out', str(tmp_path / f'{family}.png')])
        assert cv2.imread(png).shape[1] > 0
        if family == 'dense':
            other = _checkpoint(path, str(tmp_path / 'dense2.pth'), seed=1)
            result = dict(config=path, random=ckpt, trained=other, top1_random=20.0,
                          top1_trained=90.0, iters=1)
            picture, notes = draw.draw_family('dense', result, data_root, str(tmp_path / 'o'))
            assert osp.isfile(picture) and 'largest |change|' in notes[0]
            assert build_model_from_config(path).backbone.num_layers == 4
