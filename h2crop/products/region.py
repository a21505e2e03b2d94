"""From satellite products and parcels to H2Crop tiles, in resumable stages.

:func:`prepare_region` chains what the other modules of
:mod:`h2crop.products` and :mod:`h2crop.datasets.converters` do, each as a
:class:`~h2crop.products.stages.Stage` (skipped when its outputs exist and
match its inputs and options):

1. ``s2``: Sentinel-2 L2A products -> 12 monthly composites of the year
   (:func:`~h2crop.products.sentinel2.build_monthly_composites`) and their
   gap-filled copies (the model has no nodata handling; months without a
   clear observation are filled in time, :mod:`~h2crop.products.gapfill`);
2. ``enmap``: EnMAP L2A products -> the 218-band cube on the 30 m grid
   aligned to the composites (:func:`~h2crop.products.enmap_cube.
   build_enmap_cube`);
3. ``tiles``: composites + cube + parcel declarations -> H2Crop tiles,
   split lists and reports (:func:`~h2crop.datasets.converters.
   convert_region`);
4. ``stats``: the training tiles' band statistics and a config that
   inherits the base config with them (``band_stats.py``);
5. ``prior`` (with last year's parcels): them rasterised on the composites'
   grid as the 4-band prior raster ``tools/infer.py --prior`` reads;
6. ``check``: the tiles checked as ``tools/misc/check_dataset.py`` does.

The output grid is, unless given, the first S2 product's 10 m grid cut to
where EnMAP products lie (there the tiles can have every input). The same
products -> composites + cube stages also serve mapping a new area without
tiles (:func:`prepare_scene_inputs`, ``tools/infer.py --s2-products``).
"""
import math
import os.path as osp
from typing import Any, Callable, Dict, Optional, Sequence

import shapely
from affine import Affine

from h2crop.constants import NUM_MONTHS, TAXONOMY_FILE, TILE_SIZE
from h2crop.geo.footprint import footprint, grid_outline, target_description
from h2crop.geo.grid import RasterGrid, read_grid

from .enmap import DEFAULT_MASKS, find_enmap_products
from .enmap_cube import build_enmap_cube, report_path, source_path
from .errors import ProductError
from .s2_metadata import DEFAULT_MASK_CLASSES
from .sentinel2 import (
    REPORT_CSV,
    REPORT_JSON,
    build_monthly_composites,
    composite_path,
    find_products,
    resolve_grid,
)
from .stages import Stage, StageRunner

#: Sub-folders of a prepared region.
S2_DIR = 's2'
ENMAP_DIR = 'enmap'
TILES_DIR = 'tiles'
#: The cube inside ``ENMAP_DIR``.
CUBE_FILE = 'enmap_cube.tif'
#: Last year's parcels rasterised on the composites' grid (for mapping).
PRIOR_FILE = 'prior.tif'


def region_grid(s2_products: Sequence, enmap_products: Sequence,
                like: Optional[str] = None, crs=None,
                bounds: Optional[Sequence[float]] = None) -> RasterGrid:
    """The 10 m output grid of a region.

    A grid given by ``like`` or ``crs`` + ``bounds`` is used as it is;
    otherwise the first S2 product's 10 m grid is cut to the footprints of
    the EnMAP products (in whole pixels of that grid, so it stays aligned
    with the S2 tile's pixels).

    Raises:
        ProductError: When no EnMAP product overlaps the first S2
            product's grid (naming both footprints in one CRS).
    """
    if like is not None or bounds is not None:
        return resolve_grid(s2_products, like=like, crs=crs, bounds=bounds)
    base = resolve_grid(s2_products)
    if not enmap_products:
        return base
    area = shapely.union_all([footprint(p.grid, base.crs)
                              for p in enmap_products])
    inter = grid_outline(base).intersection(area)
    if inter.is_empty or inter.area <= 0:
        raise ProductError(
            'no EnMAP product overlaps the Sentinel-2 grid '
            f'{target_description(base, s2_products[0].source)}: EnMAP '
            'footprints ' + '; '.join(
                f'{p.name} {tuple(round(v, 1) for v in footprint(p.grid, base.crs).bounds)}'  # noqa: E501
                for p in enmap_products))
    left, bottom, right, top = inter.bounds
    inv = ~base.transform
    cols = [c for c, _ in (inv * (left, top), inv * (right, bottom))]
    rows = [r for _, r in (inv * (left, top), inv * (right, bottom))]
    col0 = max(0, math.floor(min(cols) + 1e-6))
    row0 = max(0, math.floor(min(rows) + 1e-6))
    col1 = min(base.width, math.ceil(max(cols) - 1e-6))
    row1 = min(base.height, math.ceil(max(rows) - 1e-6))
    transform = base.transform * Affine.translation(col0, row0)
    return RasterGrid(base.crs, transform, col1 - col0, row1 - row0)


def _s2_stage(s2_sources: Sequence[str], products: Sequence,
              out_dir: str, year: int, months: Sequence[int],
              grid: RasterGrid, options: Dict[str, Any],
              progress: bool) -> Stage:
    outputs = [composite_path(out_dir, year, m, kind) for m in months
               for kind in ('composite', 'count', 'filled')]
    outputs += [osp.join(out_dir, REPORT_JSON), osp.join(out_dir, REPORT_CSV)]

    def run(overwrite: bool) -> Dict[str, Any]:
        report = build_monthly_composites(
            products, out_dir, year, months=months, grid=grid,
            fill_gaps=True, overwrite=overwrite, progress=progress,
            **{k: v for k, v in options.items() if k != 'assume_offset'})
        return dict(months=[dict(
            month=r['month'], file=r['file'], filled_file=r['filled_file'],
            clear_share=r['clear_share'], filled_share=r.get('filled_share'),
            products=r.get('products', [])) for r in report['months']],
            notes=report.get('notes', []), seconds=report['seconds'])

    return Stage('s2', list(s2_sources), dict(
        year=year, months=list(months), grid=_grid_key(grid), **options),
        outputs, run)


def _grid_key(grid: RasterGrid) -> Dict[str, Any]:
    return dict(crs=grid.crs.to_wkt(), transform=list(grid.transform)[:6],
                width=grid.width, height=grid.height)


def _enmap_stage(enmap_sources: Sequence[str], products: Sequence,
                 cube: str, grid: RasterGrid, masks: Sequence[str],
                 progress: bool) -> Stage:
    def run(overwrite: bool) -> Dict[str, Any]:
        report = build_enmap_cube(list(products), grid, cube,
                                  masks=masks, overwrite=overwrite,
                                  progress=progress)
        return {k: report[k] for k in ('products', 'covered_share')
                if k in report}

    return Stage('enmap', list(enmap_sources),
                 dict(grid=_grid_key(grid), masks=list(masks)),
                 [cube, source_path(cube), report_path(cube)], run)


def prepare_scene_inputs(
        work_dir: str, s2_sources: Sequence[str],
        enmap_sources: Sequence[str] = (), year: Optional[int] = None,
        months: Optional[Sequence[int]] = None,
        like: Optional[str] = None, crs=None,
        bounds: Optional[Sequence[float]] = None,
        s2_options: Optional[Dict[str, Any]] = None,
        enmap_masks: Sequence[str] = DEFAULT_MASKS,
        overwrite: bool = False, progress: bool = False,
        log: Callable[[str], None] = lambda msg: None) -> Dict[str, Any]:
    """Products -> gap-filled monthly composites (+ EnMAP cube) of an area.

    The first two stages of :func:`prepare_region`, for mapping an area
    with ``tools/infer.py`` without making tiles.

    Args:
        work_dir: Folder of the composites (``s2/``) and the cube
            (``enmap/``); stages already done there are skipped.
        s2_sources: Sentinel-2 L2A products (see
            :func:`~h2crop.products.sentinel2.find_products`).
        enmap_sources: EnMAP L2A products; none for a model without EnMAP.
        year: Calendar year; default: that of the first S2 product.
        months: Months to composite (default 1..12).
        like: Raster whose grid to use.
        crs: CRS of ``bounds``.
        bounds: Output bounds.
        s2_options: More arguments of ``build_monthly_composites``
            (``mask_classes``, ``resampling``, ``workers``, ...).
        enmap_masks: EnMAP quality masks applied.
        overwrite: Remake stages whose outputs do not match.
        progress: Progress bars.
        log: Called with one line per stage.

    Returns:
        ``s2``: the filled composites January first (one per month),
        ``enmap``: the cube or None, ``grid``: the output grid,
        ``skipped``: stages found up to date, ``summaries``.
    """
    s2_products = find_products(s2_sources, (s2_options or {}).get(
        'assume_offset'))
    if not s2_products:
        raise ProductError(f'no Sentinel-2 product in {list(s2_sources)}')
    year = int(year if year is not None else s2_products[0].month[0])
    months = tuple(months or range(1, NUM_MONTHS + 1))
    enmap_products = find_enmap_products(list(enmap_sources)) \
        if enmap_sources else []
    grid = region_grid(s2_products, enmap_products, like, crs, bounds)
    runner = StageRunner(work_dir, overwrite, log)
    s2_dir = osp.join(work_dir, S2_DIR)
    options = dict(s2_options or {})
    options.setdefault('mask_classes', list(DEFAULT_MASK_CLASSES))
    # the products found above are composited (their metadata read once);
    # the stage's fingerprint is the state of the files they came from
    summary = runner.run(_s2_stage(s2_sources, s2_products, s2_dir, year,
                                   months, grid, options, progress))
    filled = [m['filled_file'] for m in summary['months']]
    cube = None
    if enmap_sources:
        cube = osp.join(work_dir, ENMAP_DIR, CUBE_FILE)
        runner.run(_enmap_stage(enmap_sources, enmap_products, cube,
                                read_grid(filled[0]), enmap_masks, progress))
    return dict(s2=filled, enmap=cube, grid=grid, year=year,
                skipped=list(runner.skipped), summaries=runner.done,
                runner=runner)


def prepare_region(out_dir: str, s2_sources: Sequence[str],
                   enmap_sources: Sequence[str], parcels: str,
                   taxonomy: Any, year: Optional[int] = None,
                   code_column: Optional[str] = None,
                   code_map: Optional[str] = None,
                   prior_parcels: Optional[str] = None,
                   prior_code_column: Optional[str] = None,
                   like: Optional[str] = None, crs=None,
                   bounds: Optional[Sequence[float]] = None,
                   tile_size: int = TILE_SIZE,
                   convert_options: Optional[Dict[str, Any]] = None,
                   s2_options: Optional[Dict[str, Any]] = None,
                   enmap_masks: Sequence[str] = DEFAULT_MASKS,
                   base_config: Optional[str] = None,
                   workers: int = 1, overwrite: bool = False,
                   progress: bool = False,
                   log: Callable[[str], None] = lambda msg: None
                   ) -> Dict[str, Any]:
    """Products + parcels -> composites -> cube -> tiles + band statistics.

    Args:
        out_dir: Folder of the region: ``s2/``, ``enmap/`` and the data
            root ``tiles/`` (``h5_data/``, ``data_lists/``,
            ``cascade_labels.csv``, reports, ``band_stats.{json,py}``).
        s2_sources: Sentinel-2 L2A products of the year.
        enmap_sources: EnMAP L2A products.
        parcels: Parcel declarations of the labelled year.
        taxonomy: The taxonomy of the tiles: a ``cascade_labels.csv`` path
            or an embedded table (e.g. a checkpoint's).
        year: Calendar year of the composites; default: the first S2
            product's.
        code_column: Crop code attribute (default: the code map preset's,
            or ``EC_hcat_c`` of a EuroCrops file).
        code_map: ``'eurocrops'``, ``'rpg'`` or a CSV local code ->
            HCAT3 code.
        prior_parcels: Parcels of the previous year (the prior).
        prior_code_column: Code attribute of the prior parcels.
        like: Raster whose 10 m grid to use.
        crs: CRS of ``bounds``.
        bounds: Output bounds.
        tile_size: Tile side in S2 pixels.
        convert_options: More arguments of ``convert_region``
            (``split_block``, ``val_fraction``, ``min_valid``, ...).
        s2_options: More arguments of ``build_monthly_composites``.
        enmap_masks: EnMAP quality masks applied.
        base_config: Config the written ``band_stats.py`` inherits.
        workers: Processes cutting tiles and computing statistics (and
            dask workers of the composites unless ``s2_options`` sets
            them).
        overwrite: Remake stages whose outputs do not match.
        progress: Progress bars.
        log: Called with one line per stage.

    Returns:
        ``data_root``, ``config`` (the band statistics config), ``prior``
        (the prior raster or None), the stage summaries and the stages
        skipped.
    """
    from h2crop.datasets.band_stats import compute_band_stats, write_band_stats
    from h2crop.datasets.checker import check_dataset
    from h2crop.datasets.converters import convert_region
    from h2crop.datasets.converters.parcels import write_prior_raster
    from h2crop.taxonomy import load_taxonomy

    s2_options = dict(s2_options or {})
    s2_options.setdefault('workers', workers)
    scene = prepare_scene_inputs(out_dir, s2_sources, enmap_sources, year,
                                 None, like, crs, bounds, s2_options,
                                 enmap_masks, overwrite, progress, log)
    runner = scene['runner']
    root = osp.join(out_dir, TILES_DIR)
    tax = load_taxonomy(taxonomy)
    conv = dict(convert_options or {})
    inputs = list(scene['s2']) + [scene['enmap'], parcels] + (
        [prior_parcels] if prior_parcels else [])
    if code_map and osp.isfile(code_map):
        inputs.append(code_map)

    def run_tiles(over: bool) -> Dict[str, Any]:
        report = convert_region(
            root, scene['s2'], scene['enmap'], parcels, code_column,
            taxonomy, prior_parcels_path=prior_parcels,
            prior_code_column=prior_code_column, code_map_path=code_map,
            tile_size=tile_size, workers=workers, overwrite=over, **conv)
        keys = ('tiles_written', 'tiles_total', 'splits',
                'tiles_skipped_min_valid', 'unmapped_parcels',
                'overlapping_pairs')
        return {k: report[k] for k in keys if k in report}

    tiles = runner.run(Stage(
        'tiles', inputs, dict(taxonomy=tax.digest(), code_column=code_column,
                              code_map=code_map, tile_size=tile_size,
                              prior_code_column=prior_code_column, **conv),
        [osp.join(root, 'conversion_report.json'),
         osp.join(root, TAXONOMY_FILE)] +
        [osp.join(root, 'data_lists', f'{s}.txt')
         for s in ('train', 'val', 'test')], run_tiles))

    def run_stats(over: bool) -> Dict[str, Any]:
        stats = compute_band_stats(root, 'train',
                                   workers=workers if workers > 1 else 0)
        paths = write_band_stats(stats, root, base_config=base_config)
        with open(paths[-1], 'a', encoding='utf-8') as f:
            # trainable as it is: the region's tiles are its data root
            f.write(f'data_root = {osp.abspath(root)!r}\n')
        return dict(config=paths[-1], num_tiles=stats['num_tiles'])

    lists = [osp.join(root, 'data_lists', 'train.txt')]
    stats = runner.run(Stage(
        'stats', lists + [osp.join(root, 'conversion_report.json')],
        dict(base_config=osp.abspath(base_config) if base_config else None),
        [osp.join(root, 'band_stats.json'), osp.join(root, 'band_stats.py')],
        run_stats))

    prior_raster = None
    if prior_parcels:
        prior_raster = osp.join(out_dir, PRIOR_FILE)
        grid = read_grid(scene['s2'][0])

        def run_prior(over: bool) -> Dict[str, Any]:
            return write_prior_raster(prior_parcels, grid, tax, prior_raster,
                                      prior_code_column or code_column,
                                      code_map, overwrite=over)

        runner.run(Stage('prior', [prior_parcels] + (
            [code_map] if code_map and osp.isfile(code_map) else []),
            dict(taxonomy=tax.digest(), grid=_grid_key(grid),
                 column=prior_code_column or code_column, code_map=code_map),
            [prior_raster], run_prior))

    problems = check_dataset(root, workers=workers)
    if problems:
        raise ProductError(
            f'{len(problems)} problem(s) in the tiles of {root}, first: '
            f'{problems[0]} (tools/misc/check_dataset.py {root} lists all)')
    log(f'check: {tiles.get("tiles_written")} tiles of {root} pass '
        'check_dataset')
    return dict(data_root=root, config=stats['config'], s2=scene['s2'],
                enmap=scene['enmap'], prior=prior_raster, tiles=tiles,
                skipped=runner.skipped, summaries=runner.done)
