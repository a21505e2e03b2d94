"""Convert (or inspect) AgriFM weights into h2crop's S2 encoder key layout.

Usage:
    python tools/model_converters/agrifm2h2crop.py SRC DST \
        [--patch-kernel-policy keep|reinit|fold] [--patch-size 2 4 4]
    python tools/model_converters/agrifm2h2crop.py SRC --inspect

The output holds ``state_dict`` with keys ``patch_emd.proj.*`` and
``backbone.*`` (other sensors and index buffers dropped) plus ``meta``; it
loads with ``load_agrifm_weights`` or ``init_cfg=dict(type='AgriFM',
checkpoint=DST)``. Patch-kernel policy: ``keep`` writes the stored kernel
as is (the loader applies its own policy), ``reinit`` leaves the patch
embedding out, ``fold`` sums temporal tap groups to ``--patch-size``.
"""
import argparse
import os
import os.path as osp
import sys
from collections import Counter, OrderedDict
from typing import Dict, List, Optional

import torch

from h2crop.models.weights.agrifm import (
    PATCH_BIAS,
    PATCH_WEIGHT,
    fold_patch_kernel,
    map_agrifm_state_dict,
    read_checkpoint,
)
from h2crop.models.weights.io import CheckpointReadError


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        epilog='Exit status: 0 on success, 1 when SRC holds no S2 backbone '
        'tensors, 2 when SRC is missing or not a checkpoint.')
    parser.add_argument('src', help='AgriFM.pth as released (state_dict '
                        'with encoder.* keys), or an already converted file')
    parser.add_argument('dst', nargs='?', help='output file with the S2 '
                        'encoder weights in our layout (not with --inspect)')
    parser.add_argument('--patch-kernel-policy', default='keep',
                        choices=('keep', 'reinit', 'fold'),
                        help='what to write for the patch embedding: keep the '
                        'released kernel (the loader applies its own policy '
                        'later), reinit (leave it out: a fresh one is '
                        'trained), fold (sum temporal taps to --patch-size); '
                        'default keep')
    parser.add_argument('--patch-size', type=int, nargs=3, default=(2, 4, 4),
                        metavar=('T', 'H', 'W'),
                        help='our patch kernel, for --patch-kernel-policy '
                        'fold (default 2 4 4)')
    parser.add_argument('--inspect', action='store_true',
                        help='print key groups, counts and shapes; write '
                        'nothing')
    args = parser.parse_args(argv)
    if not args.inspect and not args.dst:
        parser.error('DST is required unless --inspect is given')
    return args


def _group(key: str) -> str:
    """Coarse group name of a source key for the inspection table."""
    parts = key.split('.')
    if 'patch_emd' in key:
        return '.'.join(parts[:-1]) if parts[-1] in ('weight', 'weights',
                                                     'bias') else key
    if 'layers' in parts:
        i = parts.index('layers')
        sub = 'downsample' if 'downsample' in parts else 'blocks'
        return '.'.join(parts[:i + 2] + [sub])
    return '.'.join(parts[:-1]) or key


def inspect(state: Dict[str, torch.Tensor]) -> None:
    """Print the groups of a state dict and what the mapping keeps."""
    groups: OrderedDict[str, List[str]] = OrderedDict()
    for key in state:
        groups.setdefault(_group(key), []).append(key)
    print(f'{len(state)} tensors, '
          f'{sum(v.numel() for v in state.values()):,} values')
    for group, keys in groups.items():
        numel = sum(state[k].numel() for k in keys)
        print(f'  {group:60s} {len(keys):4d} tensors {numel:12,d} values')
        if 'patch_emd' in group or len(keys) <= 2:
            for k in keys:
                print(f'      {k} {tuple(state[k].shape)} {state[k].dtype}')
    mapped, dropped = map_agrifm_state_dict(state)
    dtypes = Counter(str(v.dtype) for v in mapped.values())
    print(f'mapped to our layout: {len(mapped)} tensors '
          f'({sum(k.startswith("backbone.") for k in mapped)} backbone, '
          f'dtypes {dict(dtypes)})')
    for name in (PATCH_WEIGHT, PATCH_BIAS):
        if name in mapped:
            print(f'  {name} {tuple(mapped[name].shape)}')
        else:
            print(f'  {name} absent')
    for reason, keys in dropped.items():
        print(f'dropped ({reason}): {len(keys)}' +
              (f' e.g. {keys[:3]}' if keys else ''))


def convert(state: Dict[str, torch.Tensor], policy: str,
            patch_size) -> Dict[str, torch.Tensor]:
    """Map to our layout and apply the converter's patch-kernel policy."""
    mapped, _ = map_agrifm_state_dict(state)
    if policy == 'reinit':
        mapped.pop(PATCH_WEIGHT, None)
        mapped.pop(PATCH_BIAS, None)
    elif policy == 'fold' and PATCH_WEIGHT in mapped:
        weight = mapped[PATCH_WEIGHT]
        target = tuple(weight.shape[:2]) + tuple(patch_size)
        if tuple(weight.shape) != target:
            mapped[PATCH_WEIGHT] = fold_patch_kernel(weight, target)
    return mapped


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        state = read_checkpoint(args.src)
    except (FileNotFoundError, ValueError, CheckpointReadError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if args.inspect:
        inspect(state)
        return 0
    mapped = convert(state, args.patch_kernel_policy, args.patch_size)
    if not any(k.startswith('backbone.') for k in mapped):
        print(f'error: no backbone tensors found in {args.src}',
              file=sys.stderr)
        return 1
    out_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(out_dir, exist_ok=True)
    meta = dict(source=osp.abspath(args.src), converter='agrifm2h2crop',
                patch_kernel_policy=args.patch_kernel_policy)
    torch.save(dict(state_dict=mapped, meta=meta), args.dst)
    patch = (tuple(mapped[PATCH_WEIGHT].shape)
             if PATCH_WEIGHT in mapped else 'absent')
    print(f'wrote {len(mapped)} tensors to {args.dst} (patch kernel '
          f'{patch}, policy {args.patch_kernel_policy})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
