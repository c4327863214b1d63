"""The mini Market-1501 set (converted into mmdet ``ReIDDataset`` annotation files)."""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from ._draw import (_SKIN, Color, _background, _finish, _jitter, _rng, _save_jpeg, polygon_mask,
                    shape_polygon)


# Market-1501 appearance vocabulary: an identity is (shirt colour, trousers colour, pattern).
_SHIRT_COLORS: Tuple[Color, ...] = (
    (220, 30, 30), (30, 150, 40), (35, 70, 210), (240, 210, 40), (240, 240, 240),
    (25, 25, 25), (160, 40, 170), (250, 130, 20))
_TROUSER_COLORS: Tuple[Color, ...] = (
    (30, 30, 40), (60, 90, 170), (150, 150, 150), (130, 90, 50), (230, 225, 205))
_PATTERNS: Tuple[str, ...] = ('plain', 'stripes', 'split')


MARKET_HEIGHT, MARKET_WIDTH = 128, 64
MARKET_NUM_CAMERAS = 6


def _market_identity_looks(rng: np.random.Generator, num: int
                           ) -> List[Tuple[Color, Color, str]]:
    """Distinct (shirt, trousers, pattern) combinations, one per identity."""
    combos = [(s, t, p) for s in _SHIRT_COLORS for t in _TROUSER_COLORS for p in _PATTERNS]
    if num > len(combos):
        raise ValueError(f'at most {len(combos)} Market identities can be told apart, '
                         f'asked for {num}')
    order = rng.permutation(len(combos))[:num]
    return [combos[i] for i in order]


def _draw_person(rng: np.random.Generator, look: Optional[Tuple[Color, Color, str]],
                 cam: int, cam_tints: np.ndarray, crop: Optional[str] = None) -> np.ndarray:
    """A 128x64 pedestrian crop: background, head, shirt (with pattern), trousers.

    ``look=None`` draws a background-only crop (a false detection); ``crop='upper'`` keeps a
    badly cut detection showing only the upper body (Market's junk images look like this).
    """
    h, w = MARKET_HEIGHT, MARKET_WIDTH
    img = _background(rng, h, w) * cam_tints[cam - 1, 0] + cam_tints[cam - 1, 1]
    if look is not None:
        shirt, trousers, pattern = look
        scale = rng.uniform(0.82, 1.0)
        cx = w / 2 + rng.uniform(-6, 6)
        top = 6 + rng.uniform(-3, 3) + (1 - scale) * h * 0.5
        u = scale * h  # person height in pixels

        def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
            m = np.zeros((h, w), bool)
            m[max(0, int(y0)):max(0, int(y1)), max(0, int(x0)):max(0, int(x1))] = True
            return m

        head = polygon_mask(shape_polygon('circle', cx, top + 0.08 * u, 0.15 * u), h, w) > 0
        torso = rect(cx - 0.16 * u, top + 0.17 * u, cx + 0.16 * u, top + 0.52 * u)
        legs = rect(cx - 0.13 * u, top + 0.52 * u, cx + 0.13 * u, top + 0.95 * u)
        legs &= ~rect(cx - 0.015 * u, top + 0.6 * u, cx + 0.015 * u, top + 0.95 * u)
        img[legs] = _jitter(trousers, rng, 10)
        img[torso] = _jitter(shirt, rng, 10)
        if pattern == 'stripes':
            band = np.zeros((h, w), bool)
            for y in np.arange(top + 0.22 * u, top + 0.5 * u, 0.09 * u):
                band |= rect(cx - 0.16 * u, y, cx + 0.16 * u, y + 0.035 * u)
            img[torso & band] = _jitter((255 - np.asarray(shirt)) // 2 + 40, rng, 6)
        elif pattern == 'split':  # a two-tone shirt: left half darker
            img[torso & rect(0, 0, cx, h)] *= 0.55
        img[head] = _jitter(_SKIN, rng, 10)
        img *= rng.uniform(0.85, 1.15)  # per-image brightness
        if crop == 'upper':  # keep the top 45 % and stretch it to the full crop
            keep = img[: int(0.45 * h)]
            img = np.asarray(Image.fromarray(np.clip(keep, 0, 255).astype(np.uint8)).resize(
                (w, h), Image.BILINEAR), dtype=np.float32)
    return _finish(img, rng, 5.0)


def make_market1501(root: str, seed: int = 0, num_train_ids: int = 12, num_test_ids: int = 10,
                    num_distractors: int = 6, num_junk: int = 4) -> str:
    """Write a Market-1501-format person re-identification set.

    Layout: ``bounding_box_train/``, ``bounding_box_test/`` (gallery) and ``query/`` with
    128x64 crops named ``PPPP_cCsS_FFFFFF_NN.jpg`` (4-digit identity, camera 1..6, sequence,
    6-digit frame, 2-digit box index). Train and test identities are disjoint. Every test
    identity is seen by 2-4 cameras with two gallery crops per camera; it has a query crop on
    its first two cameras, so every query has gallery matches on another camera and on its own
    camera (the latter excluded by the protocol). The gallery also holds distractors
    (identity ``0000``: crops with no person) and junk (``-1_c...``: badly cut crops of test
    identities), as the real gallery does. An identity is a shirt colour, trousers colour and
    shirt pattern; crops vary in position, scale, brightness and per-camera tint.

    Config: run ``tools/dataset_converters/market1501_to_reid.py <root>`` first (or
    :func:`visattn_mm.datasets.market1501.convert_market1501`; writes ``meta/train.txt`` etc.);
    then mmdet ``ReIDDataset(data_root=<root>, ann_file='meta/train.txt',
    data_prefix=dict(img_path=''), triplet_sampler=dict(num_ids=8, ins_per_id=4))``, test
    ``ann_file='meta/test.txt'`` with ``batch_size=1`` (mmdet's ``BaseReID`` asserts it),
    ``visattn_mm.Market1501Metric`` as evaluator, ``num_classes=num_train_ids`` in
    ``LinearReIDHead``, and ``Resize(scale=(64, 128), keep_ratio=False)`` for the crops'
    own size (mmdet's MOT config uses 128x256).

    Args:
        root: Output folder (created).
        seed: Random seed.
        num_train_ids: Training identities (the triplet sampler needs at least ``num_ids``).
        num_test_ids: Query/gallery identities.
        num_distractors: Gallery crops with identity 0000.
        num_junk: Gallery crops with identity -1.

    Returns:
        ``root``.
    """
    rng = _rng(seed, 'market1501')
    pids = rng.choice(np.arange(1, 1502), num_train_ids + num_test_ids, replace=False)
    train_pids = sorted(pids[:num_train_ids].tolist())
    test_pids = sorted(pids[num_train_ids:].tolist())
    looks = dict(zip(train_pids + test_pids,
                     _market_identity_looks(rng, num_train_ids + num_test_ids)))
    # per camera: a brightness gain and an additive colour cast
    cam_tints = np.stack([np.stack([np.full(3, g), cast]) for g, cast in zip(
        rng.uniform(0.8, 1.2, MARKET_NUM_CAMERAS),
        rng.uniform(-15, 15, (MARKET_NUM_CAMERAS, 3)))]).astype(np.float32)
    frames: Dict[Tuple[int, int], int] = {}

    def name(pid: int, cam: int) -> str:
        seq = 1 + cam % 2  # a couple of sequences per camera, as in the real set
        frames[(cam, seq)] = frames.get((cam, seq), 0) + int(rng.integers(25, 400))
        box = int(rng.integers(1, 9))
        prefix = '-1' if pid == -1 else f'{pid:04d}'
        return f'{prefix}_c{cam}s{seq}_{frames[(cam, seq)]:06d}_{box:02d}.jpg'

    def write(folder: str, pid: int, cam: int, look, crop: Optional[str] = None) -> None:
        _save_jpeg(_draw_person(rng, look, cam, cam_tints, crop),
                   osp.join(root, folder, name(pid, cam)))

    for pid in train_pids:
        cams = sorted(rng.choice(np.arange(1, MARKET_NUM_CAMERAS + 1), int(rng.integers(2, 4)),
                                 replace=False).tolist())
        for cam in cams:
            for _ in range(2):
                write('bounding_box_train', pid, cam, looks[pid])
    for pid in test_pids:
        cams = sorted(rng.choice(np.arange(1, MARKET_NUM_CAMERAS + 1), int(rng.integers(2, 5)),
                                 replace=False).tolist())
        for cam in cams:
            for _ in range(2):
                write('bounding_box_test', pid, cam, looks[pid])
        for cam in cams[:2]:
            write('query', pid, cam, looks[pid])
    for _ in range(num_distractors):
        write('bounding_box_test', 0, int(rng.integers(1, MARKET_NUM_CAMERAS + 1)), None)
    for _ in range(num_junk):
        pid = test_pids[int(rng.integers(0, len(test_pids)))]
        write('bounding_box_test', -1, int(rng.integers(1, MARKET_NUM_CAMERAS + 1)),
              looks[pid], crop='upper')
    return root
