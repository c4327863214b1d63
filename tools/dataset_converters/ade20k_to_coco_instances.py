#!/usr/bin/env python
"""Convert ADE20K's instance annotations (the instance challenge's PNGs beside
ADEChallengeData2016) into the COCO json files mmdet's ``ADE20KInstanceDataset`` reads,
``ade20k_instance_{train,val}.json``, with annotation ids from 1 (mmdet's own
``ade20k2coco.py`` numbers them from 0, which pycocotools cannot match). The library is
:func:`visattn_mm.datasets.ade20k.convert_ade20k_instances`; its module docstring describes the
input layout and the output.

    python tools/dataset_converters/ade20k_to_coco_instances.py data/ADEChallengeData2016 \
        [--out-dir DIR] [--splits training:train validation:val]
"""
import argparse
import json
from typing import Optional, Sequence

from visattn_mm.datasets.ade20k import convert_ade20k_instances, unknown_category_names


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_root', help='folder with images/, annotations_instance/, '
                                          'imgCatIds.json and categoryMapping.txt')
    parser.add_argument('--out-dir', help='where to write the json files (default: data_root)')
    parser.add_argument('--splits', nargs='+', default=['training:train', 'validation:val'],
                        metavar='FOLDER:TAG',
                        help='image folders and the tag of their json file '
                             '(default: training:train validation:val)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    splits = []
    for item in args.splits:
        folder, sep, tag = item.partition(':')
        if not sep or not folder or not tag:
            parser.error(f'--splits takes FOLDER:TAG, got {item!r}')
        splits.append((folder, tag))
    written = convert_ade20k_instances(args.data_root, args.out_dir, splits,
                                       progress=not args.no_progress)
    for tag, path in written.items():
        with open(path) as f:
            data = json.load(f)
        print(f'{tag}: {path} ({len(data["images"])} images, '
              f'{len(data["annotations"])} annotations)')
    unknown = unknown_category_names(data['categories']) if written else []
    if unknown:
        print(f'note: mmdet\'s ADE20KInstanceDataset does not know the categories {unknown}; '
              'it drops their annotations unless the config lists them in metainfo')


if __name__ == '__main__':
    main()
