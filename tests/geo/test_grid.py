import logging

import numpy as np
import pytest
import rasterio
from affine import Affine
from mmengine.logging import MMLogger
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

from h2crop.constants import ENMAP_SCALE
from h2crop.geo.grid import RasterGrid, enmap_grid, open_on_grid, read_grid

from .._rasters import ORIGIN, UTM, reproject_grid, s2_grid, write_raster


def test_read_grid_and_same_as(tmp_path):
    grid = s2_grid(50, 40)
    path = write_raster(str(tmp_path / 's2.tif'),
                        np.zeros((2, 40, 50), np.int16), grid)
    got = read_grid(path)
    assert got.same_as(grid)
    assert got.crs == UTM and (got.width, got.height) == (50, 40)
    assert got.transform.c == pytest.approx(ORIGIN[0])
    shifted = RasterGrid(UTM, grid.transform @ Affine.translation(1, 0),
                         50, 40)
    assert not got.same_as(shifted)
    assert 'origin' in got.differences(shifted)[0]
    assert not got.same_as(RasterGrid(UTM, grid.transform, 51, 40))
    other = reproject_grid(grid, 'EPSG:4326')
    assert any(d.startswith('CRS') for d in got.differences(other))


def test_enmap_grid_shares_origin_and_rounds_up():
    grid = s2_grid(50, 40)  # not multiples of 3
    coarse = enmap_grid(grid)
    assert (coarse.width, coarse.height) == (17, 14)
    assert coarse.crs == grid.crs
    assert coarse.transform.a == pytest.approx(10.0 * ENMAP_SCALE)
    assert coarse.transform.e == pytest.approx(-10.0 * ENMAP_SCALE)
    assert (coarse.transform.c, coarse.transform.f) == pytest.approx(ORIGIN)
    # coarse pixel (i, j) starts at S2 pixel (3i, 3j)
    x, y = coarse.transform @ (4, 5)
    assert (x, y) == pytest.approx(grid.transform @ (12, 15))


def test_open_on_grid_aligned_yields_file(tmp_path):
    coarse = enmap_grid(s2_grid(48, 48))
    data = np.arange(3 * 16 * 16, dtype=np.int16).reshape(3, 16, 16)
    path = write_raster(str(tmp_path / 'enmap.tif'), data, coarse)
    with open_on_grid(path, coarse) as ds:
        assert isinstance(ds, DatasetReader)
        np.testing.assert_array_equal(ds.read(), data)


def test_open_on_grid_other_crs_warps_with_warning(tmp_path):
    coarse = enmap_grid(s2_grid(48, 48))
    yy, xx = np.mgrid[0:16, 0:16]
    data = np.stack([xx * 100 + 1000, yy * 100 + 1000]).astype(np.int16)
    aligned = write_raster(str(tmp_path / 'a.tif'), data, coarse)
    # the same image reprojected to UTM 32N (another CRS and origin)
    other = reproject_grid(coarse, 'EPSG:32632')
    from rasterio.warp import reproject
    moved = np.zeros((2, other.height, other.width), np.int16)
    reproject(data, moved, src_transform=coarse.transform,
              src_crs=coarse.crs, dst_transform=other.transform,
              dst_crs=other.crs, resampling=Resampling.bilinear,
              dst_nodata=-9999)
    moved_path = write_raster(str(tmp_path / 'b.tif'), moved, other,
                              nodata=-9999)
    logger = MMLogger.get_instance('h2crop_test_grid')
    records = []

    class _Catch(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = _Catch(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        with open_on_grid(moved_path, coarse, name='EnMAP') as ds:
            assert isinstance(ds, WarpedVRT)
            assert RasterGrid.from_dataset(ds).same_as(coarse)
            back = ds.read()
    finally:
        logger.removeHandler(handler)
    assert any(moved_path in m and 'CRS' in m and 'EnMAP' in m
               for m in records), records
    # interior pixels come back close to the original ramp (two warps)
    inner = (slice(None), slice(3, 13), slice(3, 13))
    err = np.abs(back[inner].astype(float) - data[inner].astype(float))
    assert err.max() < 60, err.max()
    with open_on_grid(aligned, coarse) as ds:
        assert isinstance(ds, DatasetReader)


def test_open_on_grid_origin_shift_is_warped(tmp_path):
    coarse = enmap_grid(s2_grid(48, 48))
    off = RasterGrid(UTM, coarse.transform @ Affine.translation(0.5, 0),
                     16, 16)
    path = write_raster(str(tmp_path / 'c.tif'),
                        np.ones((1, 16, 16), np.int16), off)
    with open_on_grid(path, coarse) as ds:
        assert isinstance(ds, WarpedVRT)
    with rasterio.open(path) as ds:
        assert 'origin' in ' '.join(
            coarse.differences(RasterGrid.from_dataset(ds)))


def test_pixels_outside_a_file_without_nodata_read_as_nodata(tmp_path):
    # an int16 file without a nodata value that covers only the left half
    # of the target grid: the uncovered half must not read as valid zeros
    target = s2_grid(40, 30, pixel=30.0)
    half = RasterGrid(target.crs, target.transform, 20, 30)
    data = np.full((2, 30, 20), 7, dtype=np.int16)
    path = write_raster(str(tmp_path / 'half.tif'), data, half)
    with open_on_grid(path, target, Resampling.nearest, 'EnMAP') as src:
        assert src.nodata == -32768
        out = src.read()
    assert (out[:, :, :19] == 7).all()
    assert (out[:, :, 21:] == -32768).all()


def test_from_bounds_snaps_outwards():
    grid = RasterGrid.from_bounds('EPSG:32633', (500003.7, 5299007.0,
                                                 500401.0, 5300007.2), 10)
    assert grid.transform == Affine(10, 0, 500000, 0, -10, 5300010)
    assert (grid.width, grid.height) == (41, 101)
    left, bottom, right, top = grid.bounds()
    assert left <= 500003.7 and right >= 500401.0 and bottom <= 5299007.0
    exact = RasterGrid.from_bounds(UTM, (0, 0, 100, 50), 10, snap=False)
    assert (exact.width, exact.height) == (10, 5)
    with pytest.raises(ValueError, match='empty'):
        RasterGrid.from_bounds(UTM, (10, 0, 0, 5), 10)
    with pytest.raises(ValueError, match='positive'):
        RasterGrid.from_bounds(UTM, (0, 0, 10, 5), 0)


def test_pixel_size_in_metres_and_regridding():
    from rasterio.crs import CRS

    from h2crop.geo.grid import grid_with_pixel, utm_crs
    grid = s2_grid(30, 20, pixel=20.0)
    assert grid.pixel_size_m() == (20.0, 20.0)
    fine = grid_with_pixel(grid, 10.0)
    assert (fine.width, fine.height) == (60, 40)
    assert fine.bounds() == pytest.approx(grid.bounds())
    feet = RasterGrid(CRS.from_epsg(2263), grid.transform, 30, 20)
    assert feet.pixel_size_m()[0] == pytest.approx(20 * 0.3048006096)
    lonlat = reproject_grid(grid, 'EPSG:4326')
    assert lonlat.pixel_size_m() is None
    assert utm_crs(lonlat) == CRS.from_epsg(32633)
    back = grid_with_pixel(lonlat, 10.0, utm_crs(lonlat))
    assert back.pixel_size_m() == pytest.approx((10.0, 10.0))
    # the reprojected extent contains the original one
    left, bottom, right, top = back.bounds()
    g_left, g_bottom, g_right, g_top = grid.bounds()
    assert left <= g_left + 1 and right >= g_right - 1
    assert bottom <= g_bottom + 1 and top >= g_top - 1
