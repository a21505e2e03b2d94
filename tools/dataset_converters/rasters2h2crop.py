r"""Convert monthly S2 composites, an EnMAP image and parcels into tiles.

Writes OUT/h5_data/<id>.h5 in the H2Crop layout (plus ``parcel_id`` and the
georeference), OUT/data_lists/{train,val,test}.txt (spatially blocked
split), OUT/cascade_labels.csv and the reports conversion_report.json,
unmapped_codes.csv, overlaps.csv and parcels.csv. Example::

    python tools/dataset_converters/rasters2h2crop.py data/myregion \
        --s2 s2_m01.tif ... s2_m12.tif --enmap enmap.tif \
        --parcels parcels_2023.gpkg --code-column crop_code \
        --prior-parcels parcels_2022.gpkg --code-map local2hcat.csv \
        --taxonomy cascade_labels.csv --workers 2

French RPG declarations: ``--parcels RPG_2023.gpkg --code-map rpg``;
EuroCrops country files: ``--parcels FR_2018_EC21.gpkg`` (HCAT3 codes of
EC_hcat_c, no --code-column or --code-map needed).
"""
import argparse
import os.path as osp
import sys
from typing import Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from h2crop.constants import NUM_MONTHS  # noqa: E402
from h2crop.datasets.converters import convert_region  # noqa: E402
from h2crop.datasets.converters.cli import (  # noqa: E402
    add_parcel_arguments,
    add_tile_arguments,
    split_options,
    tile_choices,
)


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output data root')
    parser.add_argument('--s2', nargs='+', required=True, metavar='TIF',
                        help=f'{NUM_MONTHS} monthly S2 composites (10 bands '
                        'each), January first; the first defines the grid')
    parser.add_argument('--enmap', required=True, help='EnMAP image (218 '
                        'bands, e.g. made from L2A products by tools/'
                        'dataset_converters/enmap_cube.py); resampled onto '
                        'the S2-aligned 30 m grid with a warning when it lies '
                        'elsewhere')
    add_parcel_arguments(parser)
    add_tile_arguments(parser)
    parser.add_argument('--workers', type=int, default=1,
                        help='processes cutting tiles (default: '
                        '%(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier conversion in OUT (default: '
                        'refuse)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    try:
        taxonomy, tile_size = tile_choices(args)
        report = convert_region(
            args.out, args.s2, args.enmap, args.parcels, args.code_column,
            taxonomy, prior_parcels_path=args.prior_parcels,
            prior_code_column=args.prior_code_column,
            code_map_path=args.code_map, tile_size=tile_size,
            workers=args.workers, overwrite=args.overwrite,
            **split_options(args))
    except (FileExistsError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(f'{report["tiles_written"]} of {report["tiles_total"]} tiles '
          f'written to {args.out} ({report["tiles_per_second"]} tiles/s; '
          f'{report["tiles_skipped_min_valid"]} below --min-valid); splits '
          f'{report["splits"]}; {sum(report["unmapped_parcels"].values())} '
          f'parcel(s) with unmapped codes, {report["overlapping_pairs"]} '
          'overlapping pair(s): see the CSV reports in OUT')
    return 0


if __name__ == '__main__':
    sys.exit(main())
