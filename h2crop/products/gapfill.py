"""Filling the gaps of monthly composites by interpolation in time.

The model has no notion of missing values, so tiles cut from composites
with nodata pixels (a month without any clear observation there) need them
filled. :func:`fill_monthly_gaps` fills each missing pixel of a month
linearly in time between the nearest earlier and later months that have a
value there (by month number), or copies the only side that exists (the
first / last months of the series); a pixel with no value in any month stays
nodata. The composites are read and written in square windows, so memory
follows the window size times the number of months, not the area.

The raw composites are kept; the filled ones are separate files, and the
share of pixels filled per month is returned for the report.
"""
import os
import os.path as osp
from typing import Dict, Mapping, Tuple

import numpy as np
import rasterio
from rasterio.windows import Window

from h2crop.geo.cog import (
    bounded_gdal_cache,
    check_output,
    temp_path,
    write_cog,
)
from h2crop.geo.grid import RasterGrid

from .errors import ProductError


def interpolate_months(values: np.ndarray, times: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Fill missing pixels linearly in time.

    Args:
        values: (M, B, h, w) float, NaN where missing; a pixel is missing in
            a month when any of its bands is.
        times: (M,) increasing times of the months (month numbers).

    Returns:
        ``(filled, was_filled)``: the values with gaps filled where at least
        one month has the pixel, (M, B, h, w); and bool (M, h, w), the
        pixels filled.
    """
    m = values.shape[0]
    valid = ~np.isnan(values).any(axis=1)  # (M, h, w)
    idx = np.arange(m)[:, None, None]
    # previous / next valid month of every (month, pixel); -1 / m for none
    prev = np.maximum.accumulate(np.where(valid, idx, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(valid, idx, m)[::-1],
                                axis=0)[::-1]
    has_prev, has_next = prev >= 0, nxt < m
    p = np.clip(prev, 0, m - 1)
    n = np.clip(nxt, 0, m - 1)
    t = np.asarray(times, np.float64)
    both = has_prev & has_next
    span = np.where(both, t[n] - t[p], 1.0)
    weight = np.where(both, (t[idx] - t[p]) / np.where(span == 0, 1, span),
                      0.0).astype(values.dtype)  # (M, h, w)
    before = np.take_along_axis(values, p[:, None], axis=0)  # (M, B, h, w)
    after = np.take_along_axis(values, n[:, None], axis=0)
    interp = np.where(both[:, None], before + (after - before) *
                      weight[:, None],
                      np.where(has_prev[:, None], before, after))
    fill = ~valid & (has_prev | has_next)
    out = np.where(fill[:, None], interp, values)
    return out, fill


def fill_monthly_gaps(paths: Mapping[int, str], out_paths: Mapping[int, str],
                      overwrite: bool = False, block_size: int = 512
                      ) -> Dict[int, Dict[str, float]]:
    """Write gap-filled copies of monthly composites.

    Args:
        paths: Month number -> composite (same grid, band count, data type
            and nodata value for all).
        out_paths: Month number -> filled output (a COG, average overviews).
        overwrite: Replace existing outputs.
        block_size: Window side (px) read from all months at once.

    Returns:
        Month -> ``filled_share`` (share of the grid's pixels filled) and
        ``missing_after_fill_share`` (still nodata: no month has them).

    Raises:
        ProductError: When the composites do not share grid, bands or
            nodata, or a composite has no nodata value.
        FileExistsError: When an output exists and not ``overwrite``.
    """
    months = sorted(paths)
    if sorted(out_paths) != months:
        raise ProductError('fill_monthly_gaps: outputs must name the same '
                           f'months as inputs ({months})')
    for month in months:
        check_output(out_paths[month], overwrite)
    with rasterio.open(paths[months[0]]) as ref:
        grid = RasterGrid.from_dataset(ref)
        profile = dict(count=ref.count, dtype=ref.dtypes[0],
                       nodata=ref.nodata)
        descriptions, tags = ref.descriptions, ref.tags()
    if profile['nodata'] is None:
        raise ProductError(f'{paths[months[0]]}: no nodata value; cannot '
                           'tell the gaps')
    for month in months[1:]:
        with rasterio.open(paths[month]) as ds:
            diffs = grid.differences(RasterGrid.from_dataset(ds))
            other = dict(count=ds.count, dtype=ds.dtypes[0],
                         nodata=ds.nodata)
        if diffs or other != profile:
            raise ProductError(
                f'{paths[month]}: differs from {paths[months[0]]} '
                f'({"; ".join(diffs) or other}); gap filling needs the '
                'months on one grid')
    times = np.asarray(months, np.float64)
    nodata = profile['nodata']
    filled = {m: 0 for m in months}
    missing = {m: 0 for m in months}
    tmps = {m: temp_path(out_paths[m], 'blocks') for m in months}
    sources, sinks = {}, {}
    try:
        with bounded_gdal_cache():
            for m in months:
                sources[m] = rasterio.open(paths[m])
                sinks[m] = rasterio.open(
                    tmps[m], 'w', driver='GTiff', width=grid.width,
                    height=grid.height, crs=grid.crs,
                    transform=grid.transform, tiled=True, blockxsize=256,
                    blockysize=256, BIGTIFF='IF_SAFER', **profile)
                sinks[m].descriptions = descriptions
                sinks[m].update_tags(**tags, gap_filled='linear in time '
                                     'between the nearest months with data')
            for row in range(0, grid.height, block_size):
                for col in range(0, grid.width, block_size):
                    win = Window(col, row, min(block_size, grid.width - col),
                                 min(block_size, grid.height - row))
                    # (M, B, h, w)
                    stack = np.stack([sources[m].read(window=win)
                                      for m in months]).astype(np.float32)
                    stack[stack == nodata] = np.nan
                    out, was = interpolate_months(stack, times)
                    still = np.isnan(out).any(axis=1)  # (M, h, w)
                    info = np.iinfo(profile['dtype']) if np.issubdtype(
                        np.dtype(profile['dtype']), np.integer) else None
                    for k, m in enumerate(months):
                        block = np.where(np.isnan(out[k]), nodata, out[k])
                        if info is not None:
                            block = np.clip(np.rint(block), info.min,
                                            info.max)
                        sinks[m].write(block.astype(profile['dtype']),
                                       window=win)
                        filled[m] += int(was[k].sum())
                        missing[m] += int(still[k].sum())
            for m in months:
                sinks.pop(m).close()
                write_cog(tmps[m], out_paths[m], resampling='average',
                          predictor=True)
    finally:
        for ds in list(sources.values()) + list(sinks.values()):
            ds.close()
        for tmp in tmps.values():
            if osp.exists(tmp):
                os.remove(tmp)
    pixels = grid.width * grid.height
    return {m: dict(filled_share=filled[m] / pixels,
                    missing_after_fill_share=missing[m] / pixels)
            for m in months}
