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

from h2crop.constants import NUM_MONTHS, TILE_SIZE  # noqa: E402
from h2crop.datasets.converters import convert_region  # noqa: E402
from h2crop.datasets.converters.parcels import (  # noqa: E402
    EC_HCAT_CODE,
    EUROCROPS,
    PRESET_COLUMNS,
    RPG,
)
from h2crop.engine.checkpoint_experiment import checkpoint_choices  # noqa: E402


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
    parser.add_argument('--parcels', required=True, help='parcels of the '
                        'labelled year (GeoPackage, Shapefile, GeoParquet; '
                        'EuroCrops country files as they are)')
    parser.add_argument('--code-column',
                        help='attribute holding the crop code (default: the '
                        f'--code-map preset\'s, {PRESET_COLUMNS[RPG]} for '
                        f'{RPG} and {PRESET_COLUMNS[EUROCROPS]} for '
                        f'{EUROCROPS}, else {EC_HCAT_CODE} of a EuroCrops '
                        'file); matched case-insensitively')
    parser.add_argument('--prior-parcels', help='parcels of the previous '
                        'year (the prior; default: none, an all-background '
                        'prior)')
    parser.add_argument('--prior-code-column', help='code attribute of the '
                        'prior parcels (default: as for --parcels)')
    parser.add_argument('--code-map', help=f'{EUROCROPS} (EC_hcat_c holds '
                        f'HCAT3 codes), {RPG} (French RPG CODE_CULTU -> '
                        'HCAT3, the table shipped in h2crop/datasets/'
                        'converters/code_maps/) or a CSV local_code,'
                        'HCAT3_code (default: none, the codes are HCAT3 '
                        'codes)')
    tax = parser.add_mutually_exclusive_group(required=True)
    tax.add_argument('--taxonomy',
                     help='cascade_labels.csv with an HCAT3_code column')
    tax.add_argument('--like-checkpoint', metavar='CKPT',
                     help='take the taxonomy and the tile size from a '
                     'trained checkpoint (tiles that model can be tested or '
                     'fine-tuned on)')
    parser.add_argument('--tile-size', type=int,
                        help='tile side in S2 pixels, a multiple of 3 '
                        f'(default: {TILE_SIZE}, or the checkpoint\'s with '
                        '--like-checkpoint)')
    parser.add_argument('--split-block', type=int, default=8,
                        help='blocks of k x k tiles go to one split '
                        '(default: %(default)s)')
    parser.add_argument('--val-fraction', type=float, default=0.15,
                        help='target share of the tiles in the validation '
                        'split (whole split blocks are assigned; default: '
                        '%(default)s)')
    parser.add_argument('--test-fraction', type=float, default=0.15,
                        help='target share of the tiles in the test split; '
                        'the rest is training (default: %(default)s)')
    parser.add_argument('--min-valid', type=float, default=0.5,
                        help='skip tiles with a smaller share of pixels '
                        'with data in every month and in EnMAP (default: '
                        '%(default)s)')
    parser.add_argument('--workers', type=int, default=1,
                        help='processes cutting tiles (default: '
                        '%(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the split draw (default: %(default)s)')
    parser.add_argument('--id-prefix', default='tile',
                        help='sample ids are <prefix>_r<row>_c<col> '
                        '(default: %(default)s)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier conversion in OUT (default: '
                        'refuse)')
    return parser.parse_args(argv)


def main(argv: Sequence[str] = None) -> int:
    args = parse_args(argv)
    try:
        taxonomy, tile_size = args.taxonomy, args.tile_size or TILE_SIZE
        if args.like_checkpoint:
            taxonomy, trained = checkpoint_choices(args.like_checkpoint)
            if args.tile_size not in (None, trained):
                raise ValueError(
                    f'--tile-size {args.tile_size} differs from the '
                    f'checkpoint\'s tile size {trained} '
                    f'({args.like_checkpoint}); leave --tile-size out')
            tile_size = trained
        report = convert_region(
            args.out, args.s2, args.enmap, args.parcels, args.code_column,
            taxonomy, prior_parcels_path=args.prior_parcels,
            prior_code_column=args.prior_code_column,
            code_map_path=args.code_map, tile_size=tile_size,
            split_block=args.split_block, val_fraction=args.val_fraction,
            test_fraction=args.test_fraction, min_valid=args.min_valid,
            workers=args.workers, seed=args.seed, id_prefix=args.id_prefix,
            overwrite=args.overwrite)
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
