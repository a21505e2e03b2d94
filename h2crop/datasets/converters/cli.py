"""Command-line options shared by the tools that cut tiles.

``tools/dataset_converters/rasters2h2crop.py`` (rasters + parcels -> tiles)
and ``tools/prepare_region.py`` (products + parcels -> tiles) take the same
parcel and tiling options; they are declared here once.
"""
import argparse
from typing import Any, Dict, Tuple

from h2crop.constants import TILE_SIZE

from .parcels import EC_HCAT_CODE, EUROCROPS, PRESET_COLUMNS, RPG


def add_parcel_arguments(parser: argparse.ArgumentParser) -> None:
    """``--parcels``, ``--code-column``, ``--code-map`` and the prior's."""
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


def add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    """Taxonomy (or ``--like-checkpoint``), tile size and the split."""
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
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the split draw (default: %(default)s)')
    parser.add_argument('--id-prefix', default='tile',
                        help='sample ids are <prefix>_r<row>_c<col> '
                        '(default: %(default)s)')


def tile_choices(args: argparse.Namespace) -> Tuple[Any, int]:
    """The taxonomy and tile size the options ask for.

    With ``--like-checkpoint`` both come from the checkpoint's experiment
    record, and a ``--tile-size`` that contradicts it is refused.

    Returns:
        The taxonomy (a CSV path or an embedded table) and the tile size.

    Raises:
        ExperimentConfigError: For a checkpoint without record, or a
            contradicting ``--tile-size`` (both are ``ValueError``).
    """
    from h2crop.engine.checkpoint_experiment import (
        ExperimentMismatchError,
        checkpoint_choices,
    )
    if not args.like_checkpoint:
        return args.taxonomy, args.tile_size or TILE_SIZE
    taxonomy, trained = checkpoint_choices(args.like_checkpoint)
    if args.tile_size not in (None, trained):
        raise ExperimentMismatchError(
            f'--tile-size {args.tile_size} differs from the checkpoint\'s '
            f'tile size {trained} ({args.like_checkpoint}); leave '
            '--tile-size out')
    return taxonomy, trained


def split_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The split and filter arguments of ``convert_region``."""
    return dict(split_block=args.split_block, val_fraction=args.val_fraction,
                test_fraction=args.test_fraction, min_valid=args.min_valid,
                seed=args.seed, id_prefix=args.id_prefix)
