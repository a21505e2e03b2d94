r"""Compute per-band mean / std of S2 and EnMAP over a split of a data root.

One streaming pass with float64 accumulation; writes ``band_stats.json``
and ``band_stats.py`` (``norm_mean`` / ``norm_std`` and
``model.data_preprocessor.mean/std``) into the output folder.

Example::

    python tools/analysis_tools/compute_band_stats.py data/h2crop \
        --split train --workers 4 \
        --config configs/hyper_benefits/crops_S2_H_P_jun.py
    python tools/train.py work_dirs/band_stats/band_stats.py
"""
import argparse
import os
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.constants import ENMAP, S2, SPLITS  # noqa: E402
from h2crop.datasets.band_stats import compute_band_stats, write_band_stats  # noqa: E402
from h2crop.datasets.h5io import H2CropDataError  # noqa: E402


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data_root', help='folder holding h5_data/')
    parser.add_argument('--split', default='train', choices=SPLITS,
                        help='split whose list (data_lists/<split>.txt, '
                        'under DATA_ROOT first, then ./) is used (default: '
                        '%(default)s)')
    parser.add_argument('--ann-file', default=None,
                        help='explicit split list (overrides --split)')
    parser.add_argument('--modalities', nargs='+', default=[S2, ENMAP],
                        choices=[S2, ENMAP],
                        help='modalities to compute statistics for '
                        '(default: s2 enmap)')
    parser.add_argument('--workers', type=int, default=0,
                        help='worker processes (0: this process; default: '
                        '%(default)s)')
    parser.add_argument('--out-dir', default='work_dirs/band_stats',
                        help='folder for band_stats.json / band_stats.py '
                        '(default: %(default)s)')
    parser.add_argument('--config', default=None,
                        help='make band_stats.py inherit this config, so '
                        'it can be trained as is')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace band_stats.json / .py already in '
                        'the output folder')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    if args.workers < 0:
        print('error: --workers must be >= 0', file=sys.stderr)
        return 2
    if args.config is not None and not osp.isfile(args.config):
        print(f'error: --config {args.config}: file not found',
              file=sys.stderr)
        return 2
    existing = [osp.join(args.out_dir, name)
                for name in ('band_stats.json', 'band_stats.py')
                if osp.exists(osp.join(args.out_dir, name))]
    if existing and not args.overwrite:
        print(f'error: {existing} exist; pass --overwrite to replace them '
              'or choose another --out-dir', file=sys.stderr)
        return 2
    try:
        stats = compute_band_stats(args.data_root, split=args.split,
                                   ann_file=args.ann_file,
                                   modalities=args.modalities,
                                   workers=args.workers)
    except H2CropDataError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    paths = write_band_stats(stats, args.out_dir, base_config=args.config)
    print(f'{stats["num_tiles"]} tiles of {stats["ann_file"]}')
    for key in args.modalities:
        mean, std = stats[key]['mean'], stats[key]['std']
        print(f'{key}: {len(mean)} bands, mean {min(mean):.1f}..'
              f'{max(mean):.1f}, std {min(std):.1f}..{max(std):.1f}')
    print('wrote ' + ', '.join(paths))
    return 0


if __name__ == '__main__':
    sys.exit(main())
