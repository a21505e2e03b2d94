import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer

from h2crop.geo import RasterGrid
from h2crop.geo.footprint import coverage, file_coverage, footprint

from .._rasters import UTM, reproject_grid, s2_grid, write_raster


def test_same_crs_shares_are_exact():
    target = s2_grid(100, 50)
    assert coverage(target, target).share == pytest.approx(1.0)
    # shifted by 25 columns to the right: 75 of 100 columns overlap
    right = RasterGrid(UTM, target.transform @ Affine.translation(25, 0),
                       100, 50)
    assert coverage(target, right).share == pytest.approx(0.75)
    # 30 m pixels, a third as many: the same outline
    coarse = RasterGrid(UTM, target.transform @ Affine.scale(3), 34, 17)
    assert coverage(target, coarse).share == pytest.approx(1.0)
    far = RasterGrid(UTM, target.transform @ Affine.translation(5000, 0),
                     100, 50)
    assert coverage(target, far).share == 0.0


def test_other_crs_footprint_matches_pyproj(tmp_path):
    target = s2_grid(200, 200)
    other = reproject_grid(target, 'EPSG:4326')
    fp = footprint(other, UTM)
    # the reprojected outline contains the target (the lon/lat box is the
    # envelope of the UTM square) and its corner matches pyproj
    assert fp.contains(footprint(target).buffer(-1.0))
    to_utm = Transformer.from_crs('EPSG:4326', UTM, always_xy=True)
    lon, lat = other.transform @ (0, 0)
    x, y = to_utm.transform(lon, lat)
    assert min(np.hypot(px - x, py - y) for px, py in
               fp.exterior.coords) < 1e-3
    path = write_raster(str(tmp_path / 'e.tif'),
                        np.zeros((1, other.height, other.width), np.int16),
                        other)
    cov = file_coverage(target, path, 'EnMAP')
    assert cov.share == pytest.approx(1.0)
    assert cov.name == 'EnMAP' and cov.path == path
    assert 'EnMAP' in cov.describe() and '100.0%' in cov.describe()


def test_joint_share_is_the_common_part():
    from h2crop.geo.footprint import joint_share
    target = s2_grid(100, 50)
    right = RasterGrid(UTM, target.transform @ Affine.translation(25, 0),
                       100, 50)  # columns 25..99
    left = RasterGrid(UTM, target.transform @ Affine.translation(-40, 0),
                      100, 50)  # columns 0..59
    assert joint_share(target, [right]) == pytest.approx(0.75)
    assert joint_share(target, [right, left]) == pytest.approx(0.35)
    far = RasterGrid(UTM, target.transform @ Affine.translation(-200, 0),
                     100, 50)
    assert joint_share(target, [right, far]) == 0.0
    assert joint_share(target, []) == pytest.approx(1.0)
