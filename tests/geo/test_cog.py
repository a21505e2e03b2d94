"""COG output: block size of small rasters, streamed average overviews."""
import os
import os.path as osp

import numpy as np
import rasterio
from rasterio._env import get_gdal_config

from h2crop.geo.cog import (
    COG_BLOCK,
    GDAL_CACHE_MB,
    AverageOverviews,
    bounded_gdal_cache,
    cog_blocksize,
    overview_count,
    write_cog,
)

from .._rasters import s2_grid, write_raster

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_bounded_cache_is_in_megabytes():
    # rasterio passes an integer GDAL_CACHEMAX to GDALSetCacheMax64, in
    # bytes: the earlier GDAL_CACHEMAX=64 was a 64-byte cache (every block
    # decoded again per band; a warped 218-band EnMAP strip of 17 x 50
    # pixels read in ~40 s instead of ~0.4 s)
    with bounded_gdal_cache():
        assert int(get_gdal_config('GDAL_CACHEMAX')) == \
            GDAL_CACHE_MB * 1024 * 1024


def test_no_module_sets_the_cache_by_hand():
    offenders = []
    for folder, _, files in (step for top in ('h2crop', 'tools')
                             for step in os.walk(osp.join(REPO, top))):
        for name in files:
            path = osp.join(folder, name)
            if name.endswith('.py') and not path.endswith(
                    osp.join('geo', 'cog.py')):
                with open(path) as f:
                    if 'GDAL_CACHEMAX' in f.read():
                        offenders.append(path)
    assert offenders == []


def test_small_rasters_get_small_tiles(tmp_path):
    assert cog_blocksize(12, 12) == 16
    assert cog_blocksize(40, 17) == 48
    assert cog_blocksize(300, 20) == COG_BLOCK == 256
    grid = s2_grid(20, 12)
    data = np.arange(3 * 12 * 20, dtype=np.int16).reshape(3, 12, 20)
    src = write_raster(str(tmp_path / 'a.tif'), data, grid)
    out = str(tmp_path / 'b.tif')
    write_cog(src, out)
    with rasterio.open(out) as ds:
        assert ds.block_shapes[0] == (32, 32)
        assert ds.overviews(1) and (ds.read() == data).all()
        assert ds.profile['tiled']


def _block_means(data, nodata, f):
    """Mean of the valid full-resolution pixels of every f x f block."""
    k, h, w = data.shape
    hh, ww = -(-h // f) * f, -(-w // f) * f
    padded = np.full((k, hh, ww), np.nan)
    padded[:, :h, :w] = np.where(data == nodata, np.nan, data)
    # (k, hh, ww) -> (k, hh/f, f, ww/f, f) -> (k, hh/f, ww/f, f * f)
    blocks = padded.reshape(k, hh // f, f, ww // f, f).transpose(
        0, 1, 3, 2, 4).reshape(k, hh // f, ww // f, f * f)
    count = (~np.isnan(blocks)).sum(-1)
    mean = np.nansum(blocks, axis=-1) / np.maximum(count, 1)
    return np.where(count == 0, nodata, np.floor(mean + 0.5)).astype(
        data.dtype)


def test_average_overviews_from_row_blocks(tmp_path):
    rng = np.random.default_rng(0)
    grid = s2_grid(37, 29)                       # odd sizes
    data = rng.integers(-500, 3000, (3, 29, 37)).astype(np.int16)
    data[:, 3:11, 5:20] = -32768                 # a no-data hole
    data[1, 20:, :] = -32768                     # one band's own gap
    default = AverageOverviews(str(tmp_path / 'x.tif'), grid, 1, 'int16', 0)
    assert default.levels == overview_count(37, 29) == 1
    default.remove()
    # three levels (19 x 15, 10 x 8, 5 x 4): odd sizes at every level
    ovr = AverageOverviews(str(tmp_path / 'out.tif'), grid, 3, 'int16',
                           -32768, levels=3)
    for r in range(0, 29, 5):                    # blocks of 5 rows
        ovr.push(data[:, r:r + 5])
    paths = ovr.close()
    assert all(osp.basename(p).startswith('.') for p in paths)
    for level, path in enumerate(paths, start=1):
        with rasterio.open(path) as ds:
            np.testing.assert_array_equal(
                ds.read(), _block_means(data, -32768, 2**level))
    src = write_raster(str(tmp_path / 'src.tif'), data, grid,
                       nodata=-32768)
    with rasterio.open(src, 'r+') as ds:
        ds.descriptions = ('a', 'b', 'c')
        ds.update_tags(1, wavelength='418.2')
        ds.update_tags(1, ns='IMAGERY', CENTRAL_WAVELENGTH_UM='0.4182')
        ds.update_tags(products='["x & y"]')
    out = str(tmp_path / 'cog.tif')
    write_cog(src, out, resampling='average', overviews=paths)
    with rasterio.open(out) as ds:
        assert (ds.read() == data).all() and ds.nodata == -32768
        assert ds.descriptions == ('a', 'b', 'c')
        assert ds.tags(1)['wavelength'] == '418.2'
        assert ds.tags(1, ns='IMAGERY')['CENTRAL_WAVELENGTH_UM'] == '0.4182'
        assert ds.tags()['products'] == '["x & y"]'
        assert len(ds.overviews(1)) == len(paths)
        first = ds.read(out_shape=(3, 15, 19))   # the first overview
    np.testing.assert_array_equal(first, _block_means(data, -32768, 2))
    ovr.remove()
    assert not any(osp.exists(p) for p in paths)
    assert sorted(os.listdir(tmp_path)) == ['cog.tif', 'src.tif']
