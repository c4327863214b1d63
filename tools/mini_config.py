#!/usr/bin/env python
"""Turn a full-size config into a short run on a generated mini dataset (the library is
:mod:`visattn_mm.testing.mini_config`; its docstring says what changes).

    python tools/mini_config.py CONFIG --data-root data/mini/coco --out work_dirs/mini.py \
        [--iters 40] [--scale 320 256] [--lr-mult 1.0]

The result is an ordinary config file for ``mim train`` / ``mim test``.
"""
import argparse
from typing import Optional, Sequence

from visattn_mm.testing.mini_config import make_mini_config


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--out', required=True, help='where to write the mini config (.py)')
    parser.add_argument('--iters', type=int, default=40,
                        help='iterations (iteration-based configs) or epochs (epoch-based)')
    parser.add_argument('--scale', type=int, nargs=2, default=(320, 256),
                        metavar=('LONG', 'SHORT'))
    parser.add_argument('--crop', type=int, nargs=2, default=(128, 128))
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--lr-mult', type=float, default=1.0)
    parser.add_argument('--val-interval', type=int)
    parser.add_argument('--no-val', action='store_true',
                        help='no validation during training (test with `mim test`)')
    args = parser.parse_args(argv)
    cfg = make_mini_config(args.config, args.data_root, args.iters, args.scale, args.crop,
                           args.batch_size, args.lr_mult, args.val_interval,
                           validate=not args.no_val)
    cfg.dump(args.out)
    print(args.out)


if __name__ == '__main__':
    main()
