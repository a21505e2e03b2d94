r"""Sentinel-2 L2A products -> monthly composites in the dataset's format.

Writes OUT/s2_<YYYY>_<MM>.tif (10 bands B2..B12, int16 reflectance x 10000
with the BOA offset removed, nodata -32768), OUT/s2_<YYYY>_<MM>_count.tif
(uint8 clear days), optionally OUT/s2_<YYYY>_<MM>_filled.tif
(--fill-gaps) and OUT/s2_report.json / s2_report.csv. Examples::

    # SAFE folders or zips, band-file folders, STAC JSON, in any mix
    python tools/dataset_converters/s2_monthly.py data/s2_2023 \
        --inputs downloads/ search.json --year 2023

    # a chosen 10 m grid and months, gap-filled copies for tiling
    python tools/dataset_converters/s2_monthly.py data/s2_2023 \
        --inputs downloads/ --year 2023 --months 1 2 3 4 5 6 \
        --crs EPSG:32632 --bounds 600000 5090000 620000 5110000 --fill-gaps

    # search a STAC API (needs network and pip install .[online])
    python tools/dataset_converters/s2_monthly.py data/s2_2023 --year 2023 \
        --search https://earth-search.aws.element84.com/v1 --max-cloud 80 \
        --like region_grid.tif
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.constants import NUM_MONTHS, S2_GSD  # noqa: E402
from h2crop.products import (  # noqa: E402
    DEFAULT_MASK_CLASSES,
    SCL_CLASSES,
    ProductError,
    build_monthly_composites,
    resolve_grid,
    search_products,
)
from h2crop.products.sentinel2 import (  # noqa: E402
    CHUNK_SIZE,
    REDUCERS,
    RESAMPLINGS,
    SCHEDULERS,
)


def _classes_help() -> str:
    names = ', '.join(f'{k} {v}' for k, v in SCL_CLASSES.items())
    return (f'SCL classes that are not clear (default: '
            f'{" ".join(map(str, DEFAULT_MASK_CLASSES))}); classes: {names}; '
            'no data (SCL 0, DN 0) is always excluded')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Example commands: see the module docstring and '
        'docs/products.md.')
    parser.add_argument('out', help='output folder (created)')
    parser.add_argument('--inputs', nargs='+', default=[], metavar='PATH',
                        help='SAFE folders or zips, folders of band files, '
                        'STAC JSON (ItemCollection, Catalog, Collection, '
                        'Item), or folders holding any of them (default: '
                        'none; then --search is needed)')
    parser.add_argument('--year', type=int, required=True,
                        help='calendar year of the composites (required)')
    parser.add_argument('--months', type=int, nargs='+', metavar='M',
                        help=f'months to write, 1..{NUM_MONTHS} (default: '
                        'all twelve); months without a product are written '
                        'all nodata and reported')
    grid = parser.add_argument_group('output grid (default: the 10 m grid '
                                     "of the year's first product)")
    grid.add_argument('--like', metavar='RASTER',
                      help='use the grid of this raster (default: none)')
    grid.add_argument('--crs', help='CRS of --bounds, e.g. EPSG:32632 '
                      '(default: none)')
    grid.add_argument('--bounds', type=float, nargs=4,
                      metavar=('LEFT', 'BOTTOM', 'RIGHT', 'TOP'),
                      help='grid extent in --crs units, snapped outwards '
                      'to multiples of --resolution (default: none)')
    grid.add_argument('--resolution', type=float, default=S2_GSD,
                      help='pixel size with --bounds (default: '
                      '%(default)s; another needs --allow-other-resolution)')
    grid.add_argument('--allow-other-resolution', action='store_true',
                      help='accept a pixel size other than the model\'s 10 '
                      'm (default: refused)')
    proc = parser.add_argument_group('processing')
    proc.add_argument('--mask-classes', type=int, nargs='+',
                      default=list(DEFAULT_MASK_CLASSES), metavar='C',
                      help=_classes_help())
    proc.add_argument('--resampling', choices=RESAMPLINGS,
                      default='bilinear', help='resampling of reflectance '
                      'bands onto the grid, e.g. 20 m bands to 10 m '
                      '(default: bilinear; SCL is always nearest)')
    proc.add_argument('--reducer', choices=REDUCERS, default='median',
                      help='reduction of a month\'s clear days (default: '
                      'median)')
    proc.add_argument('--assume-offset', type=float, metavar='DN',
                      help='BOA offset in digital numbers for products '
                      'whose metadata state neither an offset nor an older '
                      'baseline, e.g. -1000 or 0 (default: such products '
                      'are refused)')
    proc.add_argument('--fill-gaps', action='store_true',
                      help='also write s2_<YYYY>_<MM>_filled.tif, nodata '
                      'pixels filled linearly in time from the nearest '
                      'months with data (default: off; raw composites are '
                      'always written)')
    run = parser.add_argument_group('execution')
    run.add_argument('--chunk-size', type=int, default=CHUNK_SIZE,
                     help=f'chunk side in pixels; memory grows with it and '
                     f'--workers, not with the area (default: {CHUNK_SIZE})')
    run.add_argument('--workers', type=int,
                     help='dask workers (default: min(4, CPUs))')
    run.add_argument('--scheduler', choices=SCHEDULERS, default='threads',
                     help='dask scheduler (default: threads)')
    run.add_argument('--overwrite', action='store_true',
                     help='replace existing outputs (default: refuse)')
    run.add_argument('--no-progress', action='store_true',
                     help='no progress bar (default: a bar per month on a '
                     'terminal)')
    online = parser.add_argument_group('online search (needs pystac-client)')
    online.add_argument('--search', metavar='URL',
                        help='STAC API to search over the output grid '
                        '(needs --like or --crs/--bounds; default: none)')
    online.add_argument('--collection', default='sentinel-2-l2a',
                        help='collection searched (default: sentinel-2-l2a)')
    online.add_argument('--max-cloud', type=float, metavar='PCT',
                        help='keep items with eo:cloud_cover below PCT '
                        '(default: all)')
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    bounds = tuple(args.bounds) if args.bounds else None
    try:
        sources: list = list(args.inputs)
        grid = None
        if args.search:
            if args.like is None and bounds is None:
                raise ProductError('--search needs the output grid: give '
                                   '--like RASTER or --crs and --bounds')
            grid = resolve_grid([], like=args.like, crs=args.crs,
                                bounds=bounds, resolution=args.resolution,
                                allow_other_resolution=args.
                                allow_other_resolution)
            found = search_products(args.search, grid, args.year,
                                    args.months, args.collection,
                                    args.max_cloud)
            print(f'{len(found)} item(s) found at {args.search}')
            sources += found
        if not sources:
            raise ProductError('no input: give --inputs PATH ... or '
                               '--search URL')
        report = build_monthly_composites(
            sources, args.out, args.year, months=args.months, grid=grid,
            like=None if grid is not None else args.like,
            crs=None if grid is not None else args.crs,
            bounds=None if grid is not None else bounds,
            resolution=args.resolution,
            allow_other_resolution=args.allow_other_resolution,
            mask_classes=args.mask_classes, resampling=args.resampling,
            reducer=args.reducer, assume_offset=args.assume_offset,
            chunk_size=args.chunk_size, workers=args.workers,
            scheduler=args.scheduler, fill_gaps=args.fill_gaps,
            overwrite=args.overwrite,
            progress=sys.stdout.isatty() and not args.no_progress,
            log=print)
    except (ProductError, FileExistsError, ValueError) as err:
        print(f'error: {" ".join(str(err).split())}', file=sys.stderr)
        return 2
    used = sum(p['used'] for p in report['products'])
    print(f'{len(report["months"])} composite(s) from {used} product(s) in '
          f'{report["seconds"]:.1f} s -> {args.out} (report: '
          f'{osp.join(args.out, "s2_report.json")})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
