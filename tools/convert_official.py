"""Convert an authors' released checkpoint into this package's layout.

    python tools/convert_official.py {pslt,fcvit} SRC DST

DST is an mmengine checkpoint (``{'state_dict': ..., 'meta': ...}``): use it as ``load_from`` for
the matching whole model, or as ``init_cfg=dict(type='Pretrained', checkpoint=DST,
prefix='backbone.')`` for a backbone.
"""
import argparse
import os.path as osp
import sys

import torch

from visattn_mm.converters import FAMILIES, convert


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('family', choices=sorted(FAMILIES))
    parser.add_argument('src', help="the authors' checkpoint (.pth)")
    parser.add_argument('dst', help='where to write the converted checkpoint')
    args = parser.parse_args(argv)

    # The authors' files are plain tensors + dicts (sometimes with an argparse Namespace);
    # try the safe loader first and say so when it is not enough.
    try:
        ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001
        print(f'note: {args.src} needs the full unpickler ({type(err).__name__}); '
              'only load checkpoints you trust', file=sys.stderr)
        ckpt = torch.load(args.src, map_location='cpu', weights_only=False)
    try:
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
