"""Write a synthetic dataset in the H2Crop layout.

Writes ``OUT/h5_data/<id>.h5`` (real dtypes and band counts, 12 months,
EnMAP at size/3, labels drawn at level 4 and mapped up the taxonomy, priors
changed on a fraction of the fields), ``OUT/data_lists/{train,val,test}.txt``,
``OUT/cascade_labels.csv`` and ``OUT/synthetic_info.json``. See
:mod:`h2crop.datasets.synthetic` for how tiles are drawn.

A non-empty OUT is refused; ``--overwrite`` first removes what an earlier
run of this tool wrote there (tiles, split lists, taxonomy, info file) and
leaves anything else.

Example::

    python tools/misc/make_synthetic_dataset.py data/h2crop_synthetic \
        --num-samples 64 --size 96 --seed 0
"""
import argparse
import glob
import os
import os.path as osp
import sys
import time
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.constants import (  # noqa: E402
    DATA_LISTS_DIR,
    H5_DIR,
    H5_SUFFIX,
    SPLITS,
    TAXONOMY_FILE,
    TILE_SIZE,
)
from h2crop.datasets.synthetic import (  # noqa: E402
    INFO_FILE,
    STYLES,
    make_synthetic_dataset,
)


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output data root')
    parser.add_argument('--num-samples', type=int, required=True,
                        help='number of tiles (>= 3)')
    parser.add_argument('--size', type=int, default=TILE_SIZE,
                        help='tile side in S2 pixels, a multiple of 3 '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed of the generator (same seed, '
                        'same tiles; default: %(default)s)')
    parser.add_argument('--taxonomy', default=None,
                        help='cascade_labels.csv; default: a synthetic '
                        'strict tree with the paper\'s class counts')
    parser.add_argument('--prior-change-fraction', type=float, default=0.2,
                        help='fraction of fields whose prior differs from '
                        'the label (default: %(default)s)')
    parser.add_argument('--spelling', default='loader',
                        choices=['loader', 'readme', 'mixed'],
                        help='H5 names: S2_data/EnMAP_data/priors (loader), '
                        'S2/EnMAP/prior (readme) or alternating (default: '
                        '%(default)s)')
    parser.add_argument('--style', default='default', choices=list(STYLES),
                        help='how tiles are made: default (the demo\'s '
                        'tiles) or alt (other spectra and absorption '
                        'features, strip fields, S2 with the +1000 offset, '
                        'EnMAP x 8000) to check a result on other data')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into a non-empty OUT, removing the '
                        'tiles, split lists, taxonomy and info file an '
                        'earlier run wrote there')
    return parser.parse_args(argv)


def generated_files(out: str) -> list:
    """Files in ``out`` that this tool writes (and --overwrite removes)."""
    files = glob.glob(osp.join(out, H5_DIR, '*' + H5_SUFFIX))
    files += [osp.join(out, DATA_LISTS_DIR, f'{s}.txt') for s in SPLITS]
    files += [osp.join(out, TAXONOMY_FILE),
              osp.join(out, INFO_FILE)]
    return [f for f in files if osp.isfile(f)]


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    if osp.isdir(args.out) and os.listdir(args.out):
        if not args.overwrite:
            print(f'error: {args.out} is not empty; choose an empty or new '
                  'folder, or pass --overwrite to replace a synthetic '
                  'dataset written there', file=sys.stderr)
            return 2
        for path in generated_files(args.out):
            os.remove(path)
    start = time.perf_counter()
    try:
        info = make_synthetic_dataset(
            args.out, args.num_samples, size=args.size, seed=args.seed,
            taxonomy=args.taxonomy,
            prior_change_fraction=args.prior_change_fraction,
            spelling=args.spelling, style=args.style)
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
