#!/usr/bin/env python
"""Write the annotation files mmdet's ``ReIDDataset`` reads for a Market-1501 folder
(``meta/train.txt`` with training identities relabelled 0..N-1, ``meta/test.txt`` = query then
gallery with the original ids, and ``query.txt``, ``gallery.txt``, ``train_pids.txt``). The
library is :func:`visattn_mm.datasets.market1501.convert_market1501`; its module docstring
describes the files and the matching config.

    python tools/dataset_converters/market1501_to_reid.py data/market1501 [--out-dir meta]
"""
import argparse
from typing import Optional, Sequence

from visattn_mm.datasets.market1501 import convert_market1501


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_root', help='folder with bounding_box_train/, '
                                          'bounding_box_test/ and query/')
    parser.add_argument('--out-dir', default='meta',
                        help='output folder, relative to data_root unless absolute')
    args = parser.parse_args(argv)
    for key, path in convert_market1501(args.data_root, args.out_dir).items():
        with open(path) as f:
            print(f'{key}: {path} ({sum(1 for _ in f)} lines)')


if __name__ == '__main__':
    main()
