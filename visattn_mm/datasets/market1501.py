"""Market-1501: one file-name parser and one set of constants for the annotation converter and
the query/gallery metric (visattn_mm.Market1501Metric), and the converter itself.

:func:`convert_market1501` turns a Market-1501 folder into the annotation files mmdet's
``ReIDDataset`` reads (its command line: ``tools/dataset_converters/market1501_to_reid.py``).
``ReIDDataset`` reads lines ``<image path relative to data_prefix> <integer pid>``. Two of its
habits shape the output:

* its triplet sampler draws negative identities by *position* in its pid list, so training pids
  must be exactly ``0..N-1``: ``meta/train.txt`` relabels the training identities in ascending
  order of their Market id and leaves out distractors (``0000``) and junk (``-1``);
* at test time it only stores the label, so ``meta/test.txt`` (query lines, then gallery lines)
  keeps the *original* Market ids, ``0`` and ``-1`` included. The standard protocol also needs
  each image's camera and its query/gallery membership; ``visattn_mm.Market1501Metric`` takes
  them from the image path (folder ``query`` or ``bounding_box_test`` and the Market file
  name), which ``ReIDDataset`` passes on as ``img_path``.

Written under ``<data_root>/<out_dir>`` (default ``meta``):

* ``train.txt``   ``bounding_box_train/0002_c1s1_000451_03.jpg 0``  (pids 0..N-1)
* ``query.txt``   ``query/0001_c1s1_001051_00.jpg 1``               (original ids)
* ``gallery.txt`` ``bounding_box_test/-1_c1s1_000401_03.jpg -1``     (original ids)
* ``test.txt``    ``query.txt`` followed by ``gallery.txt``
* ``train_pids.txt`` ``<label> <original id>`` for every training label

Config: ``ReIDDataset(data_root=<root>, ann_file='meta/train.txt',
data_prefix=dict(img_path=''), triplet_sampler=dict(num_ids=8, ins_per_id=4))`` for training,
``ann_file='meta/test.txt'`` (no sampler, ``batch_size=1`` as mmdet's ``BaseReID`` requires)
with ``evaluator=dict(type='visattn_mm.Market1501Metric')`` for testing.
"""
import os
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Sequence, Tuple

DISTRACTOR_PID = 0
JUNK_PID = -1

TRAIN_FOLDER = 'bounding_box_train'
GALLERY_FOLDER = 'bounding_box_test'
QUERY_FOLDER = 'query'

_MARKET_NAME = re.compile(
    r'^(?P<pid>-1|\d{4})_c(?P<camera>\d)s(?P<sequence>\d+)_(?P<frame>\d{6})_(?P<box>\d{2})'
    r'\.jpg$')


class MarketName(NamedTuple):
    """The fields of a Market-1501 file name ``PPPP_cCsS_FFFFFF_NN.jpg``."""
    pid: int  #: identity; 0 = distractor, -1 = junk
    camera: int  #: 1..6
    sequence: int
    frame: int
    box: int


def parse_market_name(filename: str) -> MarketName:
    """Parse a Market-1501 image name.

    Args:
        filename: A file name or path; only the base name is parsed.

    Returns:
        The parsed :class:`MarketName`.

    Raises:
        ValueError: When the name is not ``PPPP_cCsS_FFFFFF_NN.jpg`` (4-digit identity or
            ``-1``, camera digit, sequence, 6-digit frame, 2-digit box index).
    """
    base = osp.basename(filename)
    m = _MARKET_NAME.match(base)
    if m is None:
        raise ValueError(
            f"'{base}' is not a Market-1501 image name: expected PPPP_cCsS_FFFFFF_NN.jpg "
            "(4-digit identity or -1 for junk, camera C, sequence S, 6-digit frame F, "
            "2-digit box index N), e.g. '0002_c1s1_000451_03.jpg'")
    return MarketName(int(m['pid']), int(m['camera']), int(m['sequence']), int(m['frame']),
                      int(m['box']))


_REID_NAME = re.compile(r'^(?P<pid>-1|\d+)_c(?P<camera>\d+)')


def parse_reid_name(path: str) -> Tuple[int, int]:
    """Identity and camera from a Market-1501 / DukeMTMC-reID style image name.

    Args:
        path: Image path or file name, e.g. ``.../query/0002_c1s1_000451_03.jpg``.

    Returns:
        ``(pid, camera)``; pid is -1 for junk and 0 for distractors.

    Raises:
        ValueError: When the base name does not start with ``<pid>_c<camera>``.
    """
    base = osp.basename(path)
    m = _REID_NAME.match(base)
    if m is None:
        raise ValueError(
            f"cannot read identity and camera from '{base}': expected a Market-1501 name "
            "'PPPP_cCsS_FFFFFF_NN.jpg' (e.g. '0002_c1s1_000451_03.jpg', junk '-1_c1s1_...') "
            "or any name starting with '<pid>_c<camera>'")
    return int(m['pid']), int(m['camera'])


# --------------------------------------------------------------------------------------------
# Annotation files for mmdet's ReIDDataset
# --------------------------------------------------------------------------------------------


def list_market_folder(data_root: str, folder: str) -> List[Tuple[str, MarketName]]:
    """All ``.jpg`` images of one Market-1501 folder, sorted by name.

    Other files (the real archive has ``Thumbs.db`` files) are skipped.

    Args:
        data_root: The Market-1501 root.
        folder: ``bounding_box_train``, ``bounding_box_test`` or ``query``.

    Returns:
        ``(path relative to data_root, parsed name)`` pairs.
    """
    path = osp.join(data_root, folder)
    if not osp.isdir(path):
        raise FileNotFoundError(f'Market-1501 folder {path} not found (expected '
                                f'{TRAIN_FOLDER}/, {GALLERY_FOLDER}/ and {QUERY_FOLDER}/ under '
                                f'{data_root})')
    names = sorted(f for f in os.listdir(path) if f.lower().endswith('.jpg'))
    return [(f'{folder}/{f}', parse_market_name(f)) for f in names]


def _write_lines(path: str, lines: Sequence[str]) -> None:
    with open(path, 'w') as f:
        f.write(''.join(f'{line}\n' for line in lines))


def convert_market1501(data_root: str, out_dir: str = 'meta') -> Dict[str, str]:
    """Write ReIDDataset annotation files for a Market-1501 folder (see the module docstring).

    Args:
        data_root: Folder with ``bounding_box_train/``, ``bounding_box_test/`` and
            ``query/``.
        out_dir: Output folder, relative to ``data_root`` unless absolute.

    Returns:
        Paths of the files written, keyed ``train``, ``query``, ``gallery``, ``test`` and
        ``train_pids``.
    """
    out = out_dir if osp.isabs(out_dir) else osp.join(data_root, out_dir)
    os.makedirs(out, exist_ok=True)

    train = [(rel, n) for rel, n in list_market_folder(data_root, TRAIN_FOLDER)
             if n.pid not in (DISTRACTOR_PID, JUNK_PID)]
    if not train:
        raise ValueError(f'no labelled training images in {osp.join(data_root, TRAIN_FOLDER)}')
    label_of = {pid: i for i, pid in enumerate(sorted({n.pid for _, n in train}))}
    query = list_market_folder(data_root, QUERY_FOLDER)
    gallery = list_market_folder(data_root, GALLERY_FOLDER)

    paths = {key: osp.join(out, f'{key}.txt')
             for key in ('train', 'query', 'gallery', 'test', 'train_pids')}
    _write_lines(paths['train'], [f'{rel} {label_of[n.pid]}' for rel, n in train])
    _write_lines(paths['train_pids'], [f'{label} {pid}' for pid, label in label_of.items()])
    query_lines = [f'{rel} {n.pid}' for rel, n in query]
    gallery_lines = [f'{rel} {n.pid}' for rel, n in gallery]
    _write_lines(paths['query'], query_lines)
    _write_lines(paths['gallery'], gallery_lines)
    _write_lines(paths['test'], query_lines + gallery_lines)
    return paths
