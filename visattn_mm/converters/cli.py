"""Convert an authors' released checkpoint into this package's layout.

    python tools/convert_official.py {bvit,dense,fcvit,pslt} SRC DST [--trust-checkpoint]
    python -m visattn_mm.converters.cli {bvit,dense,fcvit,pslt} SRC DST   (the same, installed)

DST is an mmengine checkpoint (``{'state_dict': ..., 'meta': ...}``): use it as ``load_from`` for
the matching whole model, or as ``init_cfg=dict(type='Pretrained', checkpoint=DST,
prefix='backbone.')`` for a backbone.

SRC is loaded with torch's safe loader, which allows tensors, plain containers and the few types
the authors' files hold (a timm run's ``argparse.Namespace``, numpy values); anything else is
refused unless ``--trust-checkpoint`` is given (unpickling other types can run code).
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

import torch

from visattn_mm.converters import FAMILIES, convert
from visattn_mm.utils.checkpoint import load_authors_checkpoint


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the converter's command line; returns the exit status (0, or 2 for a refused SRC)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('family', choices=sorted(FAMILIES))
    parser.add_argument('src', help="the authors' checkpoint (.pth)")
    parser.add_argument('dst', help='where to write the converted checkpoint')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='unpickle any type in SRC (only for files you trust)')
    args = parser.parse_args(argv)

    try:
        ckpt = load_authors_checkpoint(args.src, trust=args.trust_checkpoint)
        state_dict = convert(args.family, ckpt)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    torch.save({'state_dict': state_dict,
                'meta': {'converted_from': osp.basename(args.src), 'family': args.family}},
               args.dst)
    print(f'wrote {len(state_dict)} tensors to {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
