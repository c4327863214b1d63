"""Attention pictures of a model over an image (see visattn_mm/visualization/attention_maps.py).

    python tools/visualize.py CONFIG [--checkpoint CKPT] IMAGE --out-dir DIR [--kind KIND ...]
        [--size H [W]] [--query Y X] [--stage S] [--block B] [--device cpu]

CONFIG is any config of configs/ (classification, detection, segmentation): its model is built in
the config's default scope and its backbone is hooked. The image is resized to the config's test
size (a centre crop's size, or its Resize scale, keeping the aspect where the config does; or
``--size``) and normalised as the config's data preprocessor does. Without ``--kind``
every kind the backbone's family has is drawn. Kinds: PSLT ``ladder``, ``branch``; FCViT
``context``; BViT, BroadT2TViT, BroadSwin ``broad``; DenseDeiT, DenseSwin ``dense_weights``.
"""
import argparse
import os.path as osp
import sys

import cv2

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from visattn_mm.visualization import (build_model_from_config, check_kind,  # noqa: E402
                                      config_test_size, family_of, get_backbone, kinds_of,
                                      load_config, load_image, normalisation, quiet_mmengine,
                                      render, to_tensor)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='a config file of configs/')
    parser.add_argument('image', help='an image file')
    parser.add_argument('--checkpoint', help='weights of the whole model (optional)')
    parser.add_argument('--out-dir', required=True, help='folder for the PNG files')
    parser.add_argument('--kind', nargs='+', help='picture kinds (default: all of the family)')
    parser.add_argument('--size', type=int, nargs='+', metavar='SIDE',
                        help='H [W] to resize to (default: the config\'s test size)')
    parser.add_argument('--query', type=float, nargs=2, metavar=('Y', 'X'),
                        help='query pixel of the resized image (default: the centre)')
    parser.add_argument('--stage', type=int, help='stage of the PSLT / BroadSwin pictures')
    parser.add_argument('--block', type=int, help='block of the PSLT / FCViT pictures')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    with quiet_mmengine():  # no INFO lines of the build
        return _run(args)


def _run(args: argparse.Namespace) -> list:
    cfg = load_config(args.config)
    image = load_image(args.image)
    size = (args.size[0], args.size[-1]) if args.size else config_test_size(cfg, image.shape)
    model = build_model_from_config(cfg, args.checkpoint, device=args.device)
    backbone = get_backbone(model)
    family = family_of(backbone)
    kinds = args.kind or list(kinds_of(backbone))
    for kind in kinds:  # refuse before any work
        check_kind(backbone, kind)
    image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    x = to_tensor(image, *normalisation(cfg), device=args.device)
    prefix = osp.splitext(osp.basename(args.config))[0] + '_'
    written = []
    for kind in kinds:
        for path, (h, w) in render(backbone, image, x, kind, args.out_dir, prefix=prefix,
                                   query=args.query, stage=args.stage, block=args.block):
            print(f'{family} {kind}: {path} ({w}x{h})')
            written.append(path)
    return written


if __name__ == '__main__':
    try:
        main()
    except ValueError as err:  # a kind the family has not, a bad stage: say so, no traceback
        sys.exit(f'error: {err}')
