"""Convert a region (S2 months, EnMAP, parcel vectors) into H2Crop tiles.

:func:`convert_region` writes ``OUT/h5_data/<id>.h5`` in the dataset's
layout plus ``parcel_id`` and the georeference attributes, the split lists
``OUT/data_lists/{train,val,test}.txt`` (spatially blocked), a copy of the
taxonomy and the reports:

* ``conversion_report.json``: counts (tiles written / skipped, pixels
  outside whole tiles, parcels, overlaps, unmapped codes), the split per
  tile, and timings;
* ``unmapped_codes.csv``: per year and code that maps to nothing, the
  reason, the number of parcels and their area (squared CRS units);
* ``overlaps.csv``: pairs of overlapping parcels (the later one in file
  order wins the shared pixels);
* ``parcels.csv``: parcel id -> feature id, code, HCAT3 code, level ids.
"""
import json
import os
import os.path as osp
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import MMLogger

from h2crop.constants import (
    BACKGROUND_ID,
    DATA_LISTS_DIR,
    ENMAP,
    H5_ATTR_CRS,
    H5_ATTR_TRANSFORM,
    H5_DIR,
    H5_SUFFIX,
    LEVELS,
    PRIOR,
    S2,
    SPLITS,
    TAXONOMY_FILE,
    TILE_SIZE,
)
from h2crop.taxonomy import load_taxonomy, write_taxonomy_csv

from ..h5io import LABEL, PARCEL_ID, write_tile
from .parcels import (
    Parcels,
    code_map_summary,
    find_overlaps,
    load_code_map,
    map_codes,
    rasterize_parcel_ids,
    read_parcels,
    resolve_code_column,
    unmapped_rows,
    write_rows,
)
from .rasters import VALID, SceneReader
from .split import blocked_split

REPORT_FILE = 'conversion_report.json'
UNMAPPED_FILE = 'unmapped_codes.csv'
OVERLAPS_FILE = 'overlaps.csv'
PARCELS_FILE = 'parcels.csv'
#: Everything :func:`convert_region` writes into OUT (for --overwrite).
OUTPUTS = (H5_DIR, DATA_LISTS_DIR, TAXONOMY_FILE, REPORT_FILE, UNMAPPED_FILE,
           OVERLAPS_FILE, PARCELS_FILE)
UNMAPPED_COLUMNS = ('year', 'code', 'hcat3_code', 'reason', 'parcels', 'area')
CURRENT, PRIOR_YEAR = 'current', 'prior'


def tile_id(prefix: str, row: int, col: int) -> str:
    """Sample id of tile ``(row, col)``: ``<prefix>_r<row>_c<col>``."""
    return f'{prefix}_r{row:04d}_c{col:04d}'


class _TileJob:
    """Cuts, labels and writes tiles; one instance per worker process."""

    def __init__(self, s2_paths: Sequence[str], enmap_path: str,
                 tile_size: int, parcels: Parcels,
                 prior: Optional[Parcels], h5_dir: str, prefix: str,
                 min_valid: float) -> None:
        self.args = (list(s2_paths), enmap_path, tile_size)
        self.parcels, self.prior = parcels, prior
        self.h5_dir, self.prefix = h5_dir, prefix
        self.min_valid = min_valid
        self.reader: Optional[SceneReader] = None

    def open(self) -> None:
        self.reader = SceneReader(*self.args).__enter__()

    def close(self) -> None:
        if self.reader is not None:
            self.reader.__exit__(None, None, None)
            self.reader = None

    def __call__(self, pos: Tuple[int, int]) -> Tuple[str, float, bool]:
        """Write tile ``pos`` unless too few pixels are valid.

        Returns:
            The sample id, the share of valid pixels and whether it was
            written.
        """
        if self.reader is None:
            self.open()
        row, col = pos
        tile = self.reader.read_tile(row, col)
        valid = tile[VALID]
        share = float(valid.mean())
        sid = tile_id(self.prefix, row, col)
        if share < self.min_valid:
            return sid, share, False
        transform = self.reader.tile_transform(row, col)
        shape = valid.shape
        pid = rasterize_parcel_ids(self.parcels, transform, shape)
        pid[~valid] = 0  # no label where the images have no data
        # (P+1, 4)[(H, W)] -> (H, W, 4) -> (4, H, W)
        label = np.moveaxis(self.parcels.paths[pid], -1, 0)
        if self.prior is not None:
            prior_id = rasterize_parcel_ids(self.prior, transform, shape)
            prior_id[~valid] = 0
            prior = np.moveaxis(self.prior.paths[prior_id], -1, 0)
        else:
            prior = np.full_like(label, BACKGROUND_ID)
        arrays = {S2: tile[S2], ENMAP: tile[ENMAP],
                  LABEL: np.ascontiguousarray(label),
                  PRIOR: np.ascontiguousarray(prior), PARCEL_ID: pid}
        attrs = {H5_ATTR_CRS: self.reader.grid.crs.to_wkt(),
                 H5_ATTR_TRANSFORM: np.asarray(tuple(transform)[:6],
                                               dtype=np.float64)}
        write_tile(osp.join(self.h5_dir, sid + H5_SUFFIX), arrays,
                   attrs=attrs)
        return sid, share, True


_WORKER_JOB: Optional[_TileJob] = None


def _init_worker(job: _TileJob) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job
    job.open()


def _run_worker(pos: Tuple[int, int]) -> Tuple[str, float, bool]:
    return _WORKER_JOB(pos)


def _prepare_out(out_dir: str, overwrite: bool) -> None:
    """Create OUT; refuse to replace earlier outputs without overwrite."""
    existing = [name for name in OUTPUTS
                if osp.exists(osp.join(out_dir, name))]
    if existing and not overwrite:
        raise FileExistsError(f'{out_dir} already holds {existing}; pass '
                              '--overwrite to replace them')
    for name in existing:
        path = osp.join(out_dir, name)
        if osp.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    os.makedirs(osp.join(out_dir, H5_DIR))
    os.makedirs(osp.join(out_dir, DATA_LISTS_DIR))


def convert_region(out_dir: str,
                   s2_paths: Sequence[str],
                   enmap_path: str,
                   parcels_path: str,
                   code_column: Optional[str],
                   taxonomy_path: str,
                   prior_parcels_path: Optional[str] = None,
                   prior_code_column: Optional[str] = None,
                   code_map_path: Optional[str] = None,
                   tile_size: int = TILE_SIZE,
                   split_block: int = 8,
                   val_fraction: float = 0.15,
                   test_fraction: float = 0.15,
                   min_valid: float = 0.5,
                   workers: int = 1,
                   seed: int = 0,
                   id_prefix: str = 'tile',
                   overwrite: bool = False) -> Dict:
    """Turn rasters and parcel vectors of a region into H2Crop tiles.

    Args:
        out_dir: Output data root.
        s2_paths: 12 monthly S2 composites (10 bands each), January first.
        enmap_path: EnMAP image (218 bands).
        parcels_path: Parcels of the labelled year (a EuroCrops country
            file works without ``code_column``).
        code_column: Crop code attribute of the parcels (also of the prior
            parcels unless ``prior_code_column`` is given); None: the code
            map preset's column, or ``EC_hcat_c`` of a EuroCrops file
            (:func:`~.parcels.resolve_code_column`).
        taxonomy_path: ``cascade_labels.csv`` with HCAT3 codes, or an
            embedded taxonomy table (a checkpoint's, see
            :func:`~h2crop.engine.checkpoint_experiment.checkpoint_choices`).
        prior_parcels_path: Parcels of the previous year (``prior``); None
            writes an all-background prior.
        prior_code_column: Code attribute of the prior parcels.
        code_map_path: ``'eurocrops'``, ``'rpg'`` or a CSV local code ->
            HCAT3 code (:func:`~.parcels.load_code_map`); None when the
            codes are HCAT3 codes.
        tile_size: Tile side in S2 pixels (multiple of 3).
        split_block: Side ``k`` of the ``k x k`` tile blocks of the split.
        val_fraction: Target share of tiles in val.
        test_fraction: Target share of tiles in test.
        min_valid: Tiles with a smaller share of valid pixels are skipped.
        workers: Worker processes cutting tiles (1: in this process).
        seed: Seed of the split.
        id_prefix: Sample ids are ``<prefix>_r<row>_c<col>``.
        overwrite: Replace earlier outputs in ``out_dir``.

    Returns:
        The report written to ``conversion_report.json``.
    """
    logger = MMLogger.get_current_instance()
    if not 0 <= min_valid <= 1:
        raise ValueError(f'--min-valid {min_valid} outside [0, 1]')
    if workers < 1:
        raise ValueError(f'--workers {workers} must be >= 1')
    start = time.perf_counter()
    taxonomy = load_taxonomy(taxonomy_path)
    reader = SceneReader(s2_paths, enmap_path, tile_size)
    positions = reader.tile_positions()
    if not positions:
        raise ValueError(f'the S2 grid ({reader.grid.width} x '
                         f'{reader.grid.height} px) holds no whole '
                         f'{tile_size} px tile (--tile-size)')
    code_map = load_code_map(code_map_path)
    column = resolve_code_column(parcels_path, code_column, code_map)
    parcels = map_codes(read_parcels(parcels_path, column, reader.grid.crs),
                        taxonomy, code_map.mapping)
    prior, prior_column = None, None
    if prior_parcels_path:
        prior_column = resolve_code_column(
            prior_parcels_path, prior_code_column or code_column, code_map)
        prior = map_codes(read_parcels(prior_parcels_path, prior_column,
                                       reader.grid.crs), taxonomy,
                          code_map.mapping)
    map_summary = code_map_summary(code_map.mapping, taxonomy)
    if code_map.mapping is not None:
        logger.info(f'code map {code_map.name}: {map_summary["entries"]} '
                    f'codes, {map_summary["to_taxonomy"]} of them to '
                    f'{map_summary["classes_reached"]} of the taxonomy\'s '
                    f'{map_summary["classes"]} classes')
    _prepare_out(out_dir, overwrite)

    # reports on the parcels
    unmapped = unmapped_rows(parcels, CURRENT)
    if prior is not None:
        unmapped += unmapped_rows(prior, PRIOR_YEAR)
    write_rows(osp.join(out_dir, UNMAPPED_FILE), unmapped, UNMAPPED_COLUMNS)
    overlaps = []
    for year, ps in ((CURRENT, parcels), (PRIOR_YEAR, prior)):
        if ps is None:
            continue
        overlaps += [dict(year=year, parcel_id_a=a, parcel_id_b=b,
                          fid_a=int(ps.fids[a - 1]),
                          fid_b=int(ps.fids[b - 1]), area=area)
                     for a, b, area in find_overlaps(ps)]
    write_rows(osp.join(out_dir, OVERLAPS_FILE), overlaps,
               ('year', 'parcel_id_a', 'parcel_id_b', 'fid_a', 'fid_b',
                'area'))
    write_rows(osp.join(out_dir, PARCELS_FILE), [
        dict(parcel_id=i + 1, fid=int(parcels.fids[i]),
             code=parcels.codes[i], hcat3_code=parcels.hcat3[i],
             **{lv: int(parcels.paths[i + 1, k])
                for k, lv in enumerate(LEVELS)})
        for i in range(len(parcels))
    ], ('parcel_id', 'fid', 'code', 'hcat3_code') + LEVELS)
    for row in unmapped:
        logger.warning(f'{row["year"]} parcels: code {row["code"]!r} '
                       f'({row["reason"]}) -> background: {row["parcels"]} '
                       f'parcel(s), area {row["area"]:.0f}')
    if overlaps:
        logger.warning(f'{len(overlaps)} pair(s) of overlapping parcels '
                       f'(later parcel wins; see {OVERLAPS_FILE})')

    # tiles
    h5_dir = osp.join(out_dir, H5_DIR)
    job = _TileJob(s2_paths, enmap_path, tile_size, parcels, prior, h5_dir,
                   id_prefix, min_valid)
    tiles_start = time.perf_counter()
    if workers == 1:
        try:
            results = [job(pos) for pos in positions]
        finally:
            job.close()
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker,
                                 initargs=(job, )) as pool:
            results = list(pool.map(_run_worker, positions, chunksize=4))
    tiles_s = time.perf_counter() - tiles_start
    written = [(pos, sid) for pos, (sid, _, ok) in zip(positions, results)
               if ok]
    skipped = [sid for sid, _, ok in results if not ok]
    if skipped:
        logger.warning(f'{len(skipped)} of {len(positions)} tiles skipped: '
                       f'fewer than {min_valid:.0%} valid pixels '
                       '(--min-valid)')
    if not written:
        raise ValueError(f'no tile has {min_valid:.0%} valid pixels '
                         '(--min-valid); nothing written')

    # split lists and taxonomy
    split = blocked_split([pos for pos, _ in written], split_block,
                          val_fraction, test_fraction, seed)
    for name in SPLITS:
        if not split[name] and (name == SPLITS[0] or
                                dict(val=val_fraction,
                                     test=test_fraction)[name] > 0):
            logger.warning(f'split {name} is empty: {len(written)} tiles '
                           f'in blocks of {split_block} x {split_block} '
                           'are too few (lower --split-block)')
        with open(osp.join(out_dir, DATA_LISTS_DIR, f'{name}.txt'), 'w',
                  encoding='utf-8') as f:
            f.write(''.join(f'{written[i][1]}\n' for i in split[name]))
    write_taxonomy_csv(taxonomy, osp.join(out_dir, TAXONOMY_FILE))

    split_of = {written[i][1]: name for name, idx in split.items()
                for i in idx}
    report = dict(
        out_dir=out_dir,
        s2=list(s2_paths), enmap=enmap_path, parcels=parcels_path,
        prior_parcels=prior_parcels_path, code_map=code_map.name or None,
        code_column=column, prior_code_column=prior_column,
        code_map_summary=map_summary,
        taxonomy=taxonomy.source, taxonomy_digest=taxonomy.digest(),
        crs=reader.grid.crs.to_string(),
        tile_size=tile_size, tile_grid=list(reader.tile_grid),
        split_block=split_block, min_valid=min_valid,
        tiles_total=len(positions), tiles_written=len(written),
        tiles_skipped_min_valid=len(skipped),
        pixels_outside_whole_tiles=reader.uncovered_pixels(),
        splits={name: len(idx) for name, idx in split.items()},
        tiles=[dict(id=sid, row=pos[0], col=pos[1], split=split_of[sid])
               for pos, sid in written],
        parcels_current=len(parcels),
        parcels_prior=0 if prior is None else len(prior),
        unmapped_parcels={year: sum(r['parcels'] for r in unmapped
                                    if r['year'] == year)
                          for year in (CURRENT, PRIOR_YEAR)},
        overlapping_pairs=len(overlaps),
        workers=workers,
        seconds_tiles=round(tiles_s, 3),
        tiles_per_second=round(len(positions) / tiles_s, 3)
        if tiles_s > 0 else None,
        seconds_total=round(time.perf_counter() - start, 3))
    with open(osp.join(out_dir, REPORT_FILE), 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
    logger.info(f'{len(written)} tiles written to {h5_dir} '
                f'({report["tiles_per_second"]} tiles/s), splits '
                f'{report["splits"]}, {len(skipped)} skipped (min-valid), '
                f'{len(unmapped)} unmapped code(s), {len(overlaps)} '
                'overlapping pair(s)')
    return report
