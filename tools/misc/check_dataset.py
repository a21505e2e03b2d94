"""Validate an H2Crop data root; exit 0 only when it is clean.

Checks the split lists (missing lists, duplicate ids, ids without a file,
tiles listed nowhere) and every listed tile (opens, keys under either name
spelling, shapes, dtypes, label and prior id ranges per level, cross-level
consistency against the taxonomy). Prints one line per problem::

    <file>: <key>: <problem> (expected ...)

Example::

    python tools/misc/check_dataset.py data/h2crop --workers 4
"""
import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.datasets.checker import SPLITS, check_dataset, resolve_taxonomy  # noqa: E402
from h2crop.taxonomy import TaxonomyError  # noqa: E402


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data_root', help='folder holding h5_data/')
    parser.add_argument('--splits', nargs='+', default=list(SPLITS),
                        help='split names (lists <lists-dir>/<split>.txt; '
                        'default: train val test)')
    parser.add_argument('--lists-dir', default=None,
                        help='folder of split lists; default DATA_ROOT/'
                        'data_lists if present, else ./data_lists')
    parser.add_argument('--taxonomy', default=None,
                        help='cascade_labels.csv; default DATA_ROOT/'
                        'cascade_labels.csv if present, else the numeric '
                        'fallback (no cross-level check)')
    parser.add_argument('--size', type=int, default=None,
                        help='expected tile side; default: per tile, from '
                        'the label')
    parser.add_argument('--quick', action='store_true',
                        help='do not read S2/EnMAP pixels')
    parser.add_argument('--allow-unlisted', action='store_true',
                        help='do not report tiles listed in no split')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes checking tiles in parallel '
                        '(default: %(default)s)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    try:
        taxonomy = resolve_taxonomy(args.data_root, args.taxonomy)
    except TaxonomyError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if not taxonomy.has_hierarchy:
        print('note: no taxonomy file; cross-level consistency is not '
              'checked', file=sys.stderr)
    counts: dict = {}
    problems = check_dataset(
        args.data_root, args.splits, taxonomy, lists_dir=args.lists_dir,
        tile_size=args.size, read_images=not args.quick,
        report_unlisted=False if args.allow_unlisted else None,
        workers=args.workers, counts=counts)
    for problem in problems:
        print(problem)
    listed = ', '.join(f'{s} {counts.get(s, 0)}' for s in args.splits)
    print(f'checked {counts.get("tiles", 0)} tile(s) (listed: {listed}): '
          f'{len(problems)} problem(s) in {args.data_root}', file=sys.stderr)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
