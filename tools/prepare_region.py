r"""Satellite products + parcel declarations -> H2Crop tiles, in one command.

Stages (each skipped when its outputs exist and match its inputs and
options; see docs/products.md):

1. s2     Sentinel-2 L2A products of a year -> 12 monthly composites (+
          gap-filled copies, counts, report)            OUT/s2/
2. enmap  EnMAP L2A products -> the 218-band cube on the 30 m grid aligned
          to the composites                            OUT/enmap/
3. tiles  composites + cube + parcels -> H2Crop tiles, split lists,
          taxonomy and reports                         OUT/tiles/
4. stats  band statistics of the training tiles and a config inheriting
          --config with them                           OUT/tiles/band_stats.py
5. prior  with --prior-parcels: last year's parcels as the 4-band prior
          raster on the composites' grid (for tools/infer.py --prior)
                                                       OUT/prior.tif
6. check  the tiles checked as tools/misc/check_dataset.py does

Example::

    python tools/prepare_region.py data/myregion \
        --s2-products downloads/s2_2023/ --enmap-products downloads/enmap/ \
        --parcels FR_2023_EC21.gpkg --code-map eurocrops \
        --prior-parcels FR_2022_EC21.gpkg \
        --taxonomy data/h2crop/cascade_labels.csv --workers 2
    python tools/train.py data/myregion/tiles/band_stats.py
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from h2crop.datasets.converters.cli import (  # noqa: E402
    add_parcel_arguments,
    add_tile_arguments,
    split_options,
    tile_choices,
)

DEFAULT_CONFIG = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                          'configs', 'demo', 'region_demo.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from h2crop.products.enmap import DEFAULT_MASKS
    from h2crop.products.s2_metadata import DEFAULT_MASK_CLASSES
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('out', help='folder of the region (s2/, enmap/, '
                        'tiles/ = the data root to train on)')
    parser.add_argument('--s2-products', nargs='+', required=True,
                        metavar='PATH', help='Sentinel-2 L2A products: '
                        'SAFE folders or zips, band-file folders, STAC '
                        'JSON, or folders of them')
    parser.add_argument('--enmap-products', nargs='+', required=True,
                        metavar='PATH', help='EnMAP L2A product folders '
                        '(or folders of them, or METADATA.XML files)')
    add_parcel_arguments(parser)
    add_tile_arguments(parser)
    parser.add_argument('--year', type=int, help='calendar year of the '
                        'composites (default: the first S2 product\'s)')
    grid = parser.add_argument_group(
        'output grid (default: the first S2 product\'s 10 m grid cut to '
        'the EnMAP footprints)')
    grid.add_argument('--like', metavar='RASTER', help='use the 10 m grid '
                      'of this raster (default: none)')
    grid.add_argument('--crs', help='CRS of --bounds, e.g. EPSG:32632 '
                      '(default: none)')
    grid.add_argument('--bounds', nargs=4, type=float,
                      metavar=('LEFT', 'BOTTOM', 'RIGHT', 'TOP'),
                      help='output bounds in --crs units, snapped outwards '
                      'to 10 m (default: none)')
    parser.add_argument('--mask-classes', nargs='+', type=int,
                        default=list(DEFAULT_MASK_CLASSES),
                        help='Sentinel-2 SCL classes that are not clear '
                        '(default: '
                        f'{" ".join(map(str, DEFAULT_MASK_CLASSES))})')
    parser.add_argument('--assume-offset', type=float,
                        help='Sentinel-2 DN offset for products whose '
                        'metadata state none, e.g. -1000 (default: refuse '
                        'such products)')
    parser.add_argument('--enmap-mask', default=','.join(DEFAULT_MASKS),
                        help='EnMAP quality masks set to nodata, comma '
                        f'separated (default: {",".join(DEFAULT_MASKS)})')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help='config the written band_stats.py inherits '
                        '(default: configs/demo/region_demo.py)')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes cutting tiles and computing '
                        'statistics, and dask workers of the composites '
                        '(default: 1)')
    parser.add_argument('--scheduler', default='threads',
                        choices=('threads', 'processes', 'synchronous'),
                        help='dask scheduler of the composites (default: '
                        'threads)')
    parser.add_argument('--overwrite', action='store_true',
                        help='remake stages whose outputs exist but were '
                        'made from other inputs or options (default: '
                        'refuse; matching stages are always skipped)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bars (default: one per stage)')
    args = parser.parse_args(argv)
    if (args.crs is None) != (args.bounds is None):
        parser.error('--crs and --bounds go together')
    if args.like is not None and args.bounds is not None:
        parser.error('give --like or --crs/--bounds, not both')
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from h2crop.products.errors import ProductError
    from h2crop.products.region import prepare_region
    from h2crop.taxonomy import TaxonomyError

    def log(msg: str) -> None:
        print(f'[prepare_region] {msg}', flush=True)

    try:
        taxonomy, tile_size = tile_choices(args)
        result = prepare_region(
            args.out, args.s2_products, args.enmap_products, args.parcels,
            taxonomy, year=args.year, code_column=args.code_column,
            code_map=args.code_map, prior_parcels=args.prior_parcels,
            prior_code_column=args.prior_code_column, like=args.like,
            crs=args.crs, bounds=args.bounds, tile_size=tile_size,
            convert_options=split_options(args),
            s2_options=dict(mask_classes=args.mask_classes,
                            assume_offset=args.assume_offset,
                            scheduler=args.scheduler),
            enmap_masks=tuple(m for m in args.enmap_mask.split(',') if m),
            base_config=args.config, workers=args.workers,
            overwrite=args.overwrite, progress=not args.no_progress,
            log=log)
    except (ProductError, TaxonomyError, FileExistsError,
            FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    tiles = result['tiles']
    log(f'{tiles.get("tiles_written")} tiles in {result["data_root"]} '
        f'(splits {tiles.get("splits")}); stages skipped: '
        f'{", ".join(result["skipped"]) or "none"}')
    log(f'train: python tools/train.py {result["config"]}')
    prior = f' --prior {result["prior"]}' if result['prior'] else ''
    log('map the area: python tools/infer.py CKPT --s2 '
        f'{" ".join(result["s2"][:2])} ... --enmap {result["enmap"]}{prior} '
        '--out map.tif (or --s2-products / --enmap-products for a new area)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
