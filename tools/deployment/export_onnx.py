#!/usr/bin/env python
"""Export a config's model (or only its backbone) to ONNX with dynamic batch, height and width.

    python tools/deployment/export_onnx.py CONFIG [--checkpoint CKPT] OUT.onnx \
        [--shape H W] [--backbone-only] [--check-shape H W ...] [--no-check]

The whole model is its tensor forward: a classifier's head logits, a single-stage detector's raw
head maps, a segmentor's logits, a re-ID model's features; the input is the normalised image batch
(the data preprocessor and post-processing are not in the graph). Two-stage detectors (Mask R-CNN)
are refused: their tensor forward selects proposals per image; export their backbone. Without
``--checkpoint`` the weights are random (the graph is the same). After writing the file, onnxruntime
is compared with torch at the example size and at each ``--check-shape`` (by default the example
plus 32 pixels per side). Window backbones (PSLT, the Swin forms) keep the example's small-map
choice: export at a size whose stage maps are larger than the window if the inputs will be (e.g.
``--shape 256 256`` for window 7). The library is :mod:`visattn_mm.deployment.onnx`; its docstring
has the details.
"""
import argparse
import importlib.util
from typing import Optional, Sequence

from visattn_mm.deployment import build_from_config, export_onnx


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--checkpoint', help="the model's checkpoint (a Runner's .pth)")
    parser.add_argument('--shape', type=int, nargs=2, default=(224, 224), metavar=('H', 'W'),
                        help='size of the traced example (default: 224 224)')
    parser.add_argument('--batch-size', type=int, default=1, help='batch of the example')
    parser.add_argument('--backbone-only', action='store_true',
                        help="export model.backbone (its tuple of maps) instead of the model")
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default: 17)')
    parser.add_argument('--check-shape', type=int, nargs=2, action='append', metavar=('H', 'W'),
                        help='a size at which onnxruntime must match torch (repeatable; '
                             'default: the example size plus 32 per side)')
    parser.add_argument('--no-check', action='store_true', help='skip the onnxruntime check')
    parser.add_argument('--rtol', type=float, default=1e-4,
                        help='largest max|onnx - torch| / max|torch| accepted (default: 1e-4)')
    args = parser.parse_args(argv)

    model = build_from_config(args.config, args.checkpoint, backbone_only=args.backbone_only)
    backbone = model if args.backbone_only else getattr(model.model, 'backbone', None)
    in_channels = getattr(backbone, 'in_channels', None) or 3
    checks = [] if args.no_check else \
        [tuple(s) for s in (args.check_shape or [(args.shape[0] + 32, args.shape[1] + 32)])]
    if checks and importlib.util.find_spec('onnxruntime') is None:
        print('onnxruntime is not installed: the file is not checked')
        checks = []
    errors = export_onnx(model, args.out, tuple(args.shape), batch_size=args.batch_size,
                         in_channels=in_channels, opset_version=args.opset,
                         verify_shapes=checks, rtol=args.rtol)
    print(f'wrote {args.out}')
    for (h, w), errs in errors.items():
        print(f'  onnxruntime vs torch at {h}x{w}: max relative error {max(errs):.2e} over '
              f'{len(errs)} outputs')


if __name__ == '__main__':
    main()
