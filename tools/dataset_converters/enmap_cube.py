r"""EnMAP L2A products -> the dataset's 218-band cube on an S2-aligned grid.

Reads L2A product folders (METADATA.XML, SPECTRAL_IMAGE, QL_QUALITY_*),
picks the 218 cube bands by wavelength, scales to int16 reflectance x 10^4,
masks clouds / cirrus / haze / snow / cloud shadow / background to -32768,
mosaics several products (latest clear observation first) and writes a COG
on the 30 m grid that shares the S2 grid's origin (3 x 3 S2 pixels per
cube pixel), plus <cube>_source.tif and <cube>_report.json. Example::

    python tools/dataset_converters/enmap_cube.py \
        data/enmap/ENMAP01-____L2A-DT0000004950_20220611T104245Z_003_* \
        --like data/myregion/s2_m01.tif --out data/myregion/enmap.tif
"""
import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.constants import S2_GSD  # noqa: E402
from h2crop.geo.grid import RasterGrid, read_grid  # noqa: E402
from h2crop.products.enmap import (  # noqa: E402
    DEFAULT_MASKS,
    DEFAULT_TOLERANCE_NM,
    MASKS,
    find_enmap_products,
    reference_from_metadata,
)
from h2crop.products.enmap_cube import (  # noqa: E402
    DEFAULT_BLOCK_MB,
    build_enmap_cube,
    report_path,
    source_path,
)


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('products', nargs='+', metavar='PRODUCT',
                        help='L2A product folders, folders of product '
                        'folders or *-METADATA.XML files')
    parser.add_argument('--out', required=True,
                        help='the cube (COG); <out>_source.tif and '
                        '<out>_report.json are written beside it')
    grid = parser.add_mutually_exclusive_group(required=True)
    grid.add_argument('--like', metavar='S2.tif',
                      help='an S2 raster whose 10 m grid the cube aligns '
                      'to (e.g. the first monthly composite)')
    grid.add_argument('--bounds', nargs=4, type=float,
                      metavar=('LEFT', 'BOTTOM', 'RIGHT', 'TOP'),
                      help='area in --crs units: an S2 grid of '
                      f'{S2_GSD:g} m snapped outwards to multiples of '
                      f'{S2_GSD:g} m (needs --crs)')
    parser.add_argument('--crs', help='CRS of --bounds, e.g. EPSG:32632 '
                        '(only with --bounds; default: none)')
    parser.add_argument('--mask', default=','.join(DEFAULT_MASKS),
                        help='comma-separated masks set to no-data, from '
                        f'{",".join(MASKS)}; "" for none but the no-data '
                        f'pixels (default: {",".join(DEFAULT_MASKS)})')
    parser.add_argument('--wavelength-tolerance', type=float,
                        default=DEFAULT_TOLERANCE_NM,
                        help='largest accepted distance (nm) between a '
                        'product band and the cube band it stands for '
                        f'(default: {DEFAULT_TOLERANCE_NM:g})')
    parser.add_argument('--bands-like', metavar='METADATA.XML',
                        help='take the cube wavelengths from this product '
                        '(218 bands, or the 218 matched in it) instead of '
                        'the dataset\'s (default: the dataset\'s)')
    parser.add_argument('--block-mb', type=float, default=DEFAULT_BLOCK_MB,
                        help='memory budget of one block of rows in MB '
                        f'(default: {DEFAULT_BLOCK_MB})')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing outputs (default: refuse)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar (default: a bar on a '
                        'terminal)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    try:
        if args.like:
            if args.crs:
                raise ValueError('--crs goes with --bounds; --like takes '
                                 'the CRS of its raster')
            s2_grid, s2_path = read_grid(args.like), args.like
        else:
            if not args.crs:
                raise ValueError('--bounds needs --crs (e.g. EPSG:32632)')
            s2_grid = RasterGrid.from_bounds(args.crs, args.bounds, S2_GSD)
            s2_path = f'--bounds {" ".join(f"{v:g}" for v in args.bounds)}'
        products = find_enmap_products(args.products)
        print(f'{len(products)} EnMAP product(s), latest first:')
        for p in products:
            print(f'  {p.name} ({p.start_time:%Y-%m-%d %H:%M}Z)')
        reference = reference_from_metadata(
            args.bands_like, args.wavelength_tolerance) \
            if args.bands_like else None
        report = build_enmap_cube(
            products, s2_grid, args.out, masks=args.mask.split(','),
            reference=reference, tolerance=args.wavelength_tolerance,
            overwrite=args.overwrite, max_block_mb=args.block_mb,
            progress=not args.no_progress and sys.stdout.isatty(),
            s2_path=s2_path)
    except (FileExistsError, ValueError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'\n{args.out}: {report["bands"]} bands, {report["width"]} x '
          f'{report["height"]} px, {report["covered_share"]:.1%} of the '
          f'grid covered ({report["rows_per_second"]} rows/s); sources in '
          f'{source_path(args.out)}, report {report_path(args.out)}')
    for p in report['products']:
        clear = 'n/a' if p['clear_share'] is None else \
            f'{p["clear_share"]:.1%}'
        print(f'  {p["source_value"]}: {p["name"]}: clear {clear}, used '
              f'{p["used_share"]:.1%} of the grid')
    return 0


if __name__ == '__main__':
    sys.exit(main())
