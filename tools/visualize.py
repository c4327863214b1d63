"""Attention pictures of a model over an image (see visattn_mm/visualization/attention_maps.py).

    python tools/visualize.py CONFIG CHECKPOINT IMAGE [--out FILE.png | DIR] [--kind KIND ...]
    python tools/visualize.py CONFIG [--checkpoint CKPT] IMAGE --out-dir DIR [--kind KIND ...]
        (both forms:) [--size H [W]] [--query Y X] [--stage S] [--block B] [--device cpu]

CONFIG is any config of configs/ (classification, detection, segmentation) or one a tool wrote
(e.g. work_dirs/pictures/<family>/config.py of tools/analysis/draw_pictures.py): its model is
built in the config's default scope and its backbone is hooked. CHECKPOINT holds the weights of
the whole model (a Runner's checkpoint or ``{'state_dict': ...}``), loaded strictly; without one
the weights are random. The image is resized to the config's test size (a centre crop's size,
or its Resize scale, keeping the aspect where the config does; or ``--size``) and normalised as
the config's data preprocessor does. Without ``--kind`` every kind the backbone's family has is
drawn. Kinds: PSLT ``ladder``, ``branch``; FCViT ``context``; BViT, BroadT2TViT, BroadSwin
``broad``; DenseDeiT, DenseSwin ``dense_weights``.

``--out`` is a PNG file (with several kinds, ``FILE_<kind>.png`` each) or a folder (files named
``<config>_<family>_<kind>.png`` as with ``--out-dir``); the default is work_dirs/visualize/.
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

DEFAULT_OUT = osp.join('work_dirs', 'visualize')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        usage='%(prog)s CONFIG [CHECKPOINT] IMAGE [--checkpoint CKPT] [--out FILE.png | DIR] '
              '[--out-dir DIR] [options]')
    parser.add_argument('config', help='a config file (configs/ or one a tool wrote)')
    parser.add_argument('paths', nargs='+', metavar='[CHECKPOINT] IMAGE',
                        help='the checkpoint of the whole model (optional) and an image file')
    parser.add_argument('--checkpoint', help='weights of the whole model (the other form)')
    parser.add_argument('--out', help='a PNG file (several kinds: FILE_<kind>.png) or a folder '
                                      f'(default: {DEFAULT_OUT})')
    parser.add_argument('--out-dir', help='folder for the PNG files (as --out DIR)')
    parser.add_argument('--kind', nargs='+', help='picture kinds (default: all of the family)')
    parser.add_argument('--size', type=int, nargs='+', metavar='SIDE',
                        help='H [W] to resize to (default: the config\'s test size)')
    parser.add_argument('--query', type=float, nargs=2, metavar=('Y', 'X'),
                        help='query pixel of the resized image (default: the centre)')
    parser.add_argument('--stage', type=int, help='stage of the PSLT / BroadSwin pictures')
    parser.add_argument('--block', type=int, help='block of the PSLT / FCViT pictures')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if len(args.paths) > 2:
        parser.error(f'expected CONFIG [CHECKPOINT] IMAGE, got {len(args.paths) + 1} paths')
    if len(args.paths) == 2:
        if args.checkpoint:
            parser.error('give the checkpoint either as CONFIG CHECKPOINT IMAGE or with '
                         '--checkpoint, not both')
        args.checkpoint = args.paths[0]
    args.image = args.paths[-1]
    if args.out and args.out_dir:
        parser.error('give --out or --out-dir, not both')
    return args


def output_paths(args: argparse.Namespace, family: str, kinds) -> dict:
    """kind -> the PNG file it is written to."""
    out = args.out or args.out_dir or DEFAULT_OUT
    if args.out and out.lower().endswith('.png'):
        if len(kinds) == 1:
            return {kinds[0]: out}
        stem = out[:-4]
        return {kind: f'{stem}_{kind}.png' for kind in kinds}
    prefix = osp.splitext(osp.basename(args.config))[0] + '_'
    return {kind: osp.join(out, f'{prefix}{family.lower()}_{kind}.png') for kind in kinds}


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
    paths = output_paths(args, family, kinds)
    image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    x = to_tensor(image, *normalisation(cfg), device=args.device)
    written = []
    for kind in kinds:
        for path, (h, w) in render(backbone, image, x, kind, '', query=args.query,
                                   stage=args.stage, block=args.block, path=paths[kind]):
            print(f'{family} {kind}: {path} ({w}x{h})')
            written.append(path)
    return written


if __name__ == '__main__':
    try:
        main()
    except ValueError as err:  # a kind the family has not, a bad stage: say so, no traceback
        sys.exit(f'error: {err}')
