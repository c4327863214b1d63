#!/usr/bin/env python
"""Turn a full-size config into a short run on a generated mini dataset (the library is
:mod:`visattn_mm.testing.mini_config`; its docstring says what changes).

    python tools/mini_config.py CONFIG --data-root data/mini/coco --out work_dirs/mini.py \
        [--iters 40] [--scale 320 256] [--lr-mult 1.0]

The result is an ordinary config file for ``mim train`` / ``mim test``. ``--demo`` applies the
demo's recipe (``make_demo_config``, what ``tools/demo.sh`` runs), ``--init-checkpoint PATH``
also writes the weights training starts from (``mim test`` on it scores the untrained model).
"""
import argparse
from typing import Optional, Sequence

from mmengine.config import Config

from visattn_mm.testing.mini_config import (make_demo_config, make_mini_config,
                                            save_initial_checkpoint)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--out', required=True, help='where to write the mini config (.py)')
    parser.add_argument('--iters', type=int, default=None,
                        help='iterations (iteration-based configs) or epochs (epoch-based); '
                             'default 40 (--demo: its own)')
    parser.add_argument('--scale', type=int, nargs=2, default=(320, 256),
                        metavar=('LONG', 'SHORT'), help='(not with --demo, which sets its own)')
    parser.add_argument('--crop', type=int, nargs=2, default=(128, 128))
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--lr-mult', type=float, default=1.0)
    parser.add_argument('--val-interval', type=int)
    parser.add_argument('--no-val', action='store_true',
                        help='no validation during training (test with `mim test`)')
    parser.add_argument('--deterministic', action='store_true',
                        help="mmengine's deterministic mode (randomness.deterministic=True)")
    parser.add_argument('--demo', action='store_true',
                        help="the demo's recipe for the mini COCO set (a detection config; "
                             'deterministic, no validation; only --iters applies)')
    parser.add_argument('--init-checkpoint', metavar='PATH',
                        help='also write the initialised, untrained model as a checkpoint')
    args = parser.parse_args(argv)
    if args.demo:
        kwargs = {} if args.iters is None else {'epochs': args.iters}
        cfg = make_demo_config(args.config, args.data_root, **kwargs)
    else:
        cfg = make_mini_config(args.config, args.data_root,
                               40 if args.iters is None else args.iters, args.scale, args.crop,
                               args.batch_size, args.lr_mult, args.val_interval,
                               validate=not args.no_val, deterministic=args.deterministic)
    cfg.dump(args.out)
    print(args.out)
    if args.init_checkpoint:
        # the config as written (so as `mim train` reads it), not the object in memory
        print(save_initial_checkpoint(Config.fromfile(args.out), args.init_checkpoint))


if __name__ == '__main__':
    main()
