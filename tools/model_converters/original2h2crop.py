"""Convert a checkpoint of the original H2Crop code to h2crop's layout.

Usage::

    python tools/model_converters/original2h2crop.py SRC DST [--allow-pickle]

SRC is a checkpoint of github.com/flyakon/H2Crop (``.pth`` written by its
mmengine runner, a bare state dict, or an ``.npz``), with or without its
unused ViT parameters, a ``state_dict`` wrapper or ``module.`` prefixes.
DST is written as ``dict(state_dict=..., meta=...)`` and loads into
``H2CropSegmentor`` with mmengine's ``load_checkpoint`` / ``--load-from``.
Keys outside the original layout make the conversion fail.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from h2crop.models.weights.original import (
    convert_original_state_dict,
    read_original_checkpoint,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint of the original code')
    parser.add_argument('dst', help='output checkpoint (h2crop layout)')
    parser.add_argument('--allow-pickle', action='store_true',
                        help='unpickle arbitrary objects in SRC (full '
                        'training checkpoints); only for files you trust')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    checkpoint = read_original_checkpoint(args.src, args.allow_pickle)
    state, dropped = convert_original_state_dict(checkpoint, args.src)
    out_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    torch.save(
        dict(state_dict=state,
             meta=dict(converted_from=osp.basename(args.src),
                       converter='original2h2crop',
                       dropped_keys=dropped)), args.dst)
    print(f'{args.src}: converted {len(state)} tensors, dropped '
          f'{len(dropped)} unused keys -> {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
