r"""Map crops with a trained h2crop model: H5 tiles or georeferenced scenes.

Examples::

    # tiles (with or without labels): <id>_pred.h5 (+ <id>_pred.png)
    python tools/infer.py CONFIG CKPT --h5 data/new/h5_data --out preds/ --show

    # the checkpoint alone: its config and experiment travel with it
    python tools/infer.py CKPT --h5 data/new/h5_data --out preds/

    # a scene: S2 monthly composites (January first), EnMAP, prior -> COG
    python tools/infer.py CONFIG CKPT --s2 s2_01.tif ... s2_06.tif \
        --enmap enmap.tif --prior prior_2023.tif --out map.tif

    # a scene from downloaded products: S2 L2A (+ EnMAP L2A) -> composites
    # (+ cube) in map_inputs/ (kept: a second run skips them) -> map
    python tools/infer.py CKPT --s2-products downloads/s2_2023/ \
        --enmap-products downloads/enmap/ --out map.tif

    # parcels with their predicted classes (scene, or georeferenced tiles)
    python tools/infer.py CONFIG CKPT --s2 ... --out map.tif \
        --parcels parcels.gpkg            # -> map_parcels.gpkg

    # several processes (tiles or row strips split across ranks)
    torchrun --nproc_per_node 2 tools/infer.py CONFIG CKPT ... \
        --launcher pytorch
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from h2crop.engine.runner_builder import finish_args, parse_cfg_options  # noqa: E402

#: Default outputs of --parcels (scene: next to the map; tiles: in --out).
PARCELS_SUFFIX = '_parcels.gpkg'
PARCELS_IN_FOLDER = 'parcels_pred.gpkg'
#: Mosaic of georeferenced tile predictions (tiles with --parcels).
MOSAIC_IN_FOLDER = 'mosaic_pred.tif'


def parse_band_list(text: str) -> List[int]:
    """``'1-100,120,130-247'`` -> 1-based band numbers."""
    bands: List[int] = []
    for part in text.split(','):
        part = part.strip()
        if '-' in part:
            lo, hi = (int(v) for v in part.split('-', 1))
            bands += list(range(lo, hi + 1))
        elif part:
            bands.append(int(part))
    return bands


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Map crops with a trained h2crop model')
    parser.add_argument(
        'model', nargs='+', metavar='[CONFIG] CHECKPOINT',
        help='a checkpoint written by h2crop\'s training (its config and '
        'experiment -- taxonomy, band statistics, window, inputs -- travel '
        'with it), optionally preceded by a config; a config\'s choices '
        'that contradict the checkpoint\'s are refused')
    parser.add_argument(
        '--allow-experiment-mismatch', action='store_true',
        help='map although the config states a taxonomy, band statistics, '
        'window, inputs or levels other than the checkpoint\'s (a warning '
        'instead of an error; default: refuse)')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--h5', nargs='+', metavar='PATH',
                     help='H5 tiles, folders of tiles or split lists '
                     '(labels optional)')
    src.add_argument('--s2', nargs='+', metavar='TIF',
                     help='S2 monthly composites January..end month (10 '
                     'bands each, dataset band order) or one file of T x 10 '
                     'bands')
    src.add_argument('--s2-products', nargs='+', metavar='PATH',
                     help='Sentinel-2 L2A products (SAFE folders or zips, '
                     'band-file folders, STAC JSON, or folders of them): '
                     'composited into monthly gap-filled composites of the '
                     'model\'s months first (as tools/prepare_region.py '
                     'does), then mapped')
    parser.add_argument('--enmap-products', nargs='+', metavar='PATH',
                        help='with --s2-products: EnMAP L2A product folders '
                        'for the cube (default: none; a model with EnMAP '
                        'needs them)')
    parser.add_argument('--products-year', type=int,
                        help='with --s2-products: year of the composites '
                        '(default: the first product\'s)')
    parser.add_argument('--products-dir', metavar='DIR',
                        help='with --s2-products: folder of the composites '
                        'and the cube; stages done there before are skipped '
                        '(default: <out without .tif>_inputs)')
    parser.add_argument('--enmap', help='EnMAP raster (218 bands, or more '
                        'with --enmap-bands); resampled to the S2-aligned '
                        '30 m grid if needed')
    parser.add_argument('--enmap-bands', type=parse_band_list,
                        help='1-based EnMAP bands to use, e.g. 1-218 or '
                        '1-120,131-228')
    parser.add_argument('--prior', help='4-band raster of last year\'s '
                        'levels on the S2 grid')
    parser.add_argument('--prior-parcels', metavar='VECTOR',
                        help='last year\'s parcel declarations instead of '
                        '--prior: rasterised onto the S2 grid as the prior '
                        '(<out without .tif>_prior.tif; default: none)')
    parser.add_argument('--prior-code-column', help='with --prior-parcels: '
                        'crop code attribute (default: the --code-map '
                        'preset\'s, or EC_hcat_c of a EuroCrops file)')
    parser.add_argument('--code-map', help='with --prior-parcels: eurocrops, '
                        'rpg or a CSV local_code,HCAT3_code (default: none, '
                        'the codes are HCAT3 codes)')
    parser.add_argument('--resample-s2', action='store_true',
                        help='S2 composites whose pixel size is not the '
                        'models\' 10 m are resampled on the fly onto a 10 m '
                        'grid (bilinear; a warning says so); without it '
                        'they are refused')
    parser.add_argument('--require-full-overlap', action='store_true',
                        help='refuse EnMAP / prior rasters that do not '
                        'cover the whole S2 grid (without it the uncovered '
                        'part is nodata and the share covered is reported '
                        'and stored in the map\'s metadata)')
    parser.add_argument('--out', required=True, help='output folder (--h5) '
                        'or GeoTIFF (--s2)')
    parser.add_argument('--show', action='store_true', help='also write '
                        'PNGs with legends: per tile (--h5) or a preview of '
                        'the map (--s2, <out>_preview.png)')
    parser.add_argument('--parcels', metavar='VECTOR',
                        help='parcel polygons (GeoPackage, Shapefile, ...): '
                        'write a copy with, per level, the predicted class '
                        'id and name, the share of pixels voting for it and '
                        'the mean confidence (needs a scene, or tiles that '
                        'carry a georeference)')
    parser.add_argument('--parcels-out', metavar='GPKG',
                        help='output of --parcels (default: '
                        '<out>_parcels.gpkg for a scene, '
                        '<out>/parcels_pred.gpkg for tiles)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace existing outputs')
    parser.add_argument('--device', default='cpu', help='device of the '
                        'model: cpu, cuda, cuda:1 (default: %(default)s)')
    parser.add_argument('--amp', action='store_true',
                        help='bfloat16 autocast (scenes)')
    parser.add_argument('--batch-size', type=int,
                        help='windows per forward pass: sets '
                        'model.test_cfg.batch_size (default: the config\'s, '
                        '1 unless set)')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
    parse_cfg_options(parser)
    args = finish_args(parser.parse_args(argv))
    if len(args.model) > 2:
        parser.error(f'expected [CONFIG] CHECKPOINT, got {len(args.model)} '
                     f'paths: {" ".join(args.model)}')
    args.config = args.model[0] if len(args.model) == 2 else None
    args.checkpoint = args.model[-1]
    if args.checkpoint.endswith('.py'):
        parser.error(f'{args.checkpoint} is a config; the last path must be '
                     'the checkpoint (.pth)')
    if args.h5 is not None:
        if args.amp:
            parser.error('--amp belongs to scene mode (--s2); tiles are '
                         'mapped in float32')
        for flag in ('enmap', 'prior', 'enmap_bands', 'resample_s2',
                     'require_full_overlap'):
            if getattr(args, flag) not in (None, False):
                parser.error(f'--{flag.replace("_", "-")} belongs to scene '
                             'mode (--s2); tiles carry their own inputs')
    if args.s2_products is None:
        for flag in ('enmap_products', 'products_year', 'products_dir'):
            if getattr(args, flag) is not None:
                parser.error(f'--{flag.replace("_", "-")} needs '
                             '--s2-products')
    elif args.enmap is not None:
        parser.error('--enmap belongs to --s2 composites; with '
                     '--s2-products give --enmap-products')
    if args.prior_parcels is None:
        for flag in ('prior_code_column', 'code_map'):
            if getattr(args, flag) is not None:
                parser.error(f'--{flag.replace("_", "-")} needs '
                             '--prior-parcels')
    elif args.prior is not None:
        parser.error('give --prior or --prior-parcels, not both')
    elif args.h5 is not None:
        parser.error('--prior-parcels belongs to scene mode; tiles carry '
                     'their own prior')
    if args.enmap_bands is not None and args.enmap is None:
        parser.error('--enmap-bands needs --enmap')
    if args.parcels_out is not None and args.parcels is None:
        parser.error('--parcels-out needs --parcels')
    if args.batch_size is not None:
        if args.batch_size < 1:
            parser.error('--batch-size must be >= 1')
        key = 'model.test_cfg.batch_size'
        options = dict(args.cfg_options or {})
        if options.get(key, args.batch_size) != args.batch_size:
            parser.error(f'--batch-size {args.batch_size} contradicts '
                         f'--cfg-options {key}={options[key]}; give one')
        options[key] = args.batch_size
        args.cfg_options = options
    return args


def export_parcels(model, map_path: str, args: argparse.Namespace,
                   out_path: str) -> None:
    """Write the parcels of ``--parcels`` with the map's predictions."""
    from h2crop.mapping.parcels import export_parcel_predictions
    try:
        summary = export_parcel_predictions(map_path, args.parcels, out_path,
                                            model.taxonomy,
                                            overwrite=args.overwrite)
    except (FileExistsError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    print(f'{summary["parcels"]} parcels written to {out_path} '
          f'({summary["with_prediction"]} with predicted pixels)')


def export_tile_parcels(model, tiles: List[str], args: argparse.Namespace,
                        out_path: str) -> None:
    """Mosaic the tiles' GeoTIFFs, then export the parcels onto it."""
    from h2crop.mapping.geotiff import mosaic_geotiffs
    from h2crop.mapping.tiles import TIF_SUFFIX, tile_id
    tifs = [osp.join(args.out, tile_id(t) + TIF_SUFFIX) for t in tiles]
    tifs = [t for t in tifs if osp.exists(t)]
    if not tifs:
        raise SystemExit('error: --parcels needs a map, but no tile carries '
                         'a georeference (tiles converted by '
                         'rasters2h2crop.py do); map a scene with --s2')
    mosaic = osp.join(args.out, MOSAIC_IN_FOLDER)
    try:
        mosaic_geotiffs(tifs, mosaic, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    print(f'{len(tifs)} georeferenced tile(s) merged into {mosaic}')
    export_parcels(model, mosaic, args, out_path)


def products_to_inputs(model, args: argparse.Namespace, rank: int,
                       world: int) -> Tuple[List[str], Optional[str]]:
    """Composites (and cube) of ``--s2-products`` for the model's months.

    Rank 0 runs the stages (skipped when done before in the products
    folder); the other ranks wait, then find them done.
    """
    from h2crop.constants import ENMAP
    from h2crop.products.errors import ProductError
    from h2crop.products.region import prepare_scene_inputs
    if ENMAP in model.modalities and not args.enmap_products:
        raise SystemExit('error: the model uses EnMAP: give '
                         '--enmap-products with --s2-products')
    if ENMAP not in model.modalities and args.enmap_products:
        raise SystemExit('error: the model was built without EnMAP; leave '
                         '--enmap-products out')
    work = args.products_dir or osp.splitext(args.out)[0] + '_inputs'

    def prepare(progress: bool):
        return prepare_scene_inputs(
            work, args.s2_products, args.enmap_products or (),
            year=args.products_year,
            months=range(1, model.num_frames + 1),
            overwrite=args.overwrite, progress=progress,
            log=lambda msg: print(f'[products] {msg}', flush=True))

    try:
        import torch.distributed as dist
        if rank != 0:
            dist.barrier()  # rank 0 prepares; here the stages are done
            scene = prepare(False)
        else:
            scene = prepare(not args.no_progress)
            if world > 1:
                dist.barrier()
    except (ProductError, FileExistsError, FileNotFoundError,
            ValueError) as err:
        raise SystemExit(f'error: {err}') from err
    return scene['s2'], scene['enmap']


def prior_from_parcels(model, args: argparse.Namespace, s2_path: str,
                       rank: int, world: int) -> str:
    """Rasterise ``--prior-parcels`` onto the S2 grid (rank 0)."""
    from h2crop.datasets.converters.parcels import (
        ParcelDataError,
        write_prior_raster,
    )
    from h2crop.geo.grid import read_grid
    out = osp.splitext(args.out)[0] + '_prior.tif'
    if rank == 0:
        try:
            info = write_prior_raster(
                args.prior_parcels, read_grid(s2_path), model.taxonomy, out,
                args.prior_code_column, args.code_map,
                overwrite=args.overwrite)
        except (ParcelDataError, FileExistsError) as err:
            raise SystemExit(f'error: {err}') from err
        print(f'prior: {info["parcels"]} parcels of {args.prior_parcels} '
              f'({info["unmapped"]} unmapped) -> {out}')
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
    return out


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    import torch
    import torch.distributed as dist
    from mmengine.logging import MMLogger

    from h2crop.apis import init_model
    from h2crop.engine.dist import init_distributed, shutdown_distributed
    from h2crop.mapping.scene import (
        FULL_COVERAGE,
        SceneError,
        SceneInputs,
        SceneMapper,
        map_scene_distributed,
        preview_path,
        write_preview,
    )
    from h2crop.mapping.tiles import collect_tiles, map_tiles

    parcels_out = None
    if args.parcels is not None:
        parcels_out = args.parcels_out or (
            osp.join(args.out, PARCELS_IN_FOLDER) if args.h5 is not None
            else osp.splitext(args.out)[0] + PARCELS_SUFFIX)
        for path in [parcels_out] + ([osp.join(args.out, MOSAIC_IN_FOLDER)]
                                     if args.h5 is not None else []):
            if osp.exists(path) and not args.overwrite:
                raise SystemExit(f'error: {path} exists; pass '
                                 '--overwrite to replace it')
        if not osp.isfile(args.parcels):
            raise SystemExit(f'error: --parcels {args.parcels} not found')

    if not MMLogger.check_instance_created('h2crop_infer'):
        MMLogger.get_instance('h2crop_infer', log_level='WARNING')
    else:
        MMLogger.get_instance('h2crop_infer')
    device = args.device
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here')
    rank, world = 0, 1
    if args.launcher != 'none':
        init_distributed(args.launcher)
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.startswith('cuda'):
            device = f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}'
    try:
        try:
            model = init_model(args.config, args.checkpoint, device,
                               args.cfg_options,
                               args.allow_experiment_mismatch)
        except (ValueError, FileNotFoundError) as err:
            # ExperimentConfigError (a ValueError), e.g. a misspelt option
            # key or a choice that contradicts the checkpoint: one line
            raise SystemExit(f'error: {err}') from err
        progress = not args.no_progress and rank == 0
        if rank == 0:
            prov = model.provenance
            print(f'model {args.checkpoint} (config: {prov["config"]}; '
                  f'experiment record {prov["experiment_record"]}); '
                  f'taxonomy {prov["taxonomy_digest"]} from '
                  f'{prov["taxonomy_source"]}; decode '
                  f'{model.test_cfg["decode"]}')
        if args.h5 is not None:
            try:
                tiles = collect_tiles(args.h5)
                written = map_tiles(model, tiles, args.out, show=args.show,
                                    overwrite=args.overwrite, rank=rank,
                                    world_size=world, progress=progress)
            except (FileExistsError, FileNotFoundError, ValueError) as err:
                raise SystemExit(f'error: {err}') from err
            if world > 1:
                dist.barrier()
            if rank == 0:
                print(f'\n{len(tiles)} tile(s) mapped into {args.out}'
                      + (f' ({len(written)} by rank 0)' if world > 1
                         else ''))
                if parcels_out is not None:
                    export_tile_parcels(model, tiles, args, parcels_out)
            return
        if args.show and osp.exists(preview_path(args.out)) and \
                not args.overwrite:
            raise SystemExit(f'error: {preview_path(args.out)} exists; pass '
                             '--overwrite to replace it')
        if args.s2_products is not None:
            s2, enmap = products_to_inputs(model, args, rank, world)
        else:
            s2, enmap = args.s2, args.enmap
        prior = args.prior
        if args.prior_parcels is not None:
            prior = prior_from_parcels(model, args, s2[0], rank, world)
        inputs = SceneInputs(s2, enmap, prior, args.enmap_bands,
                             args.resample_s2, args.require_full_overlap)
        mapper = SceneMapper(model, amp=args.amp, progress=progress)
        try:
            if world == 1:
                info = mapper.map_scene(inputs, args.out, args.overwrite)
            else:
                info = map_scene_distributed(mapper, inputs, args.out, rank,
                                             world, dist.barrier,
                                             args.overwrite)
        except (SceneError, FileExistsError, FileNotFoundError) as err:
            raise SystemExit(f'error: {err}') from err
        if rank == 0:
            print(f'\nmap {info["width"]} x {info["height"]} px written to '
                  f'{info["out"]} (class names: {info["classes_csv"]})')
            shares = info['coverage']
            if shares.get('all', 1.0) < FULL_COVERAGE:
                parts = ', '.join(f'{k} {v:.1%}' for k, v in shares.items()
                                  if k != 'all')
                print(f'the inputs cover {shares["all"]:.1%} of the map '
                      f'({parts}); the rest is nodata')
            if args.show:
                print(f'preview: {write_preview(info["out"])}')
            if parcels_out is not None:
                export_parcels(model, info['out'], args, parcels_out)
    finally:
        if args.launcher != 'none':
            shutdown_distributed()


if __name__ == '__main__':
    main()
