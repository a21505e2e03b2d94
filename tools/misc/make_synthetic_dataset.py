"""Write a synthetic dataset in the H2Crop layout.

Writes ``OUT/h5_data/<id>.h5`` (real dtypes and band counts, 12 months,
EnMAP at size/3, labels drawn at level 4 and mapped up the taxonomy, priors
changed on a fraction of the fields), ``OUT/data_lists/{train,val,test}.txt``,
``OUT/cascade_labels.csv`` and ``OUT/synthetic_info.json``. See
:mod:`h2crop.datasets.synthetic` for how tiles are drawn.

Example::

    python tools/misc/make_synthetic_dataset.py data/h2crop_synthetic \
        --num-samples 64 --size 96 --seed 0
"""
import argparse
import os.path as osp
import sys
import time
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.constants import TILE_SIZE  # noqa: E402
from h2crop.datasets.synthetic import make_synthetic_dataset  # noqa: E402


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output data root')
    parser.add_argument('--num-samples', type=int, required=True,
                        help='number of tiles (>= 3)')
    parser.add_argument('--size', type=int, default=TILE_SIZE,
                        help='tile side in S2 pixels, a multiple of 3')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--taxonomy', default=None,
                        help='cascade_labels.csv; default: a synthetic '
                        'strict tree with the paper\'s class counts')
    parser.add_argument('--prior-change-fraction', type=float, default=0.2,
                        help='fraction of fields whose prior differs from '
                        'the label')
    parser.add_argument('--spelling', default='loader',
                        choices=['loader', 'readme', 'mixed'],
                        help='H5 names: S2_data/EnMAP_data/priors (loader), '
                        'S2/EnMAP/prior (readme) or alternating')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        info = make_synthetic_dataset(
            args.out, args.num_samples, size=args.size, seed=args.seed,
            taxonomy=args.taxonomy,
            prior_change_fraction=args.prior_change_fraction,
            spelling=args.spelling)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    counts = ', '.join(f'{k} {len(v)}' for k, v in info['splits'].items())
    print(f'wrote {args.num_samples} tiles ({args.size}px) to {args.out} in '
          f'{time.perf_counter() - start:.1f}s: {counts}; taxonomy '
          f'{info["taxonomy_file"]}; {len(info["twins"])} EnMAP-only twin '
          'classes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
