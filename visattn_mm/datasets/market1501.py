"""Market-1501 file names: one parser and one set of constants for the annotation converter
(tools/market1501_to_reid.py) and the query/gallery metric (visattn_mm.Market1501Metric)."""
import os.path as osp
import re
from typing import NamedTuple, Tuple

DISTRACTOR_PID = 0
JUNK_PID = -1

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
