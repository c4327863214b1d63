#!/usr/bin/env python
"""Generate tiny, learnable datasets in the real on-disk formats (COCO, ADE20K, ImageNet,
Market-1501); the library is :mod:`visattn_mm.testing.mini_datasets`, whose docstring has the
layouts.

    python tools/mini_datasets.py all --out data/mini --seed 0
    python tools/mini_datasets.py coco --out data/mini --num-train 32 --num-val 8 --size 160

The Market-1501 set also gets its ``meta/*.txt`` annotation files (``--no-convert-market`` to
skip).
"""
import argparse
from typing import Optional, Sequence

from visattn_mm.testing.mini_datasets import MAKERS, make_dataset


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=sorted(MAKERS) + ['all'])
    parser.add_argument('--out', default='data/mini',
                        help='parent folder; each dataset goes to <out>/<name> '
                             '(ade20k and ade20k_instance share <out>/ade20k)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=None,
                        help='training images (ImageNet: per class; Market: identities)')
    parser.add_argument('--num-val', type=int, default=None,
                        help='validation images (ImageNet: per class; Market: test identities)')
    parser.add_argument('--size', type=int, default=None, help='longest image side')
    parser.add_argument('--no-convert-market', action='store_true',
                        help="skip writing the Market set's meta/*.txt annotation files "
                             '(tools/dataset_converters/market1501_to_reid.py does it later)')
    args = parser.parse_args(argv)
    roots = make_dataset(args.dataset, args.out, seed=args.seed, num_train=args.num_train,
                         num_val=args.num_val, size=args.size,
                         convert_market=not args.no_convert_market)
    for folder, root in roots.items():
        print(f'{folder}: {root}')


if __name__ == '__main__':
    main()
