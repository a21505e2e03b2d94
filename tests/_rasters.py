"""GeoTIFF writers for the mapping tests (UTM grids, odd origins)."""
import os.path as osp
from typing import Optional

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform

from h2crop.geo import RasterGrid

#: UTM zone 33N, as a real S2 tile in central Europe.
UTM = CRS.from_epsg(32633)
#: An origin that is not a multiple of the 10 m pixel size.
ORIGIN = (500003.7, 5300007.2)


def s2_grid(width: int, height: int, pixel: float = 10.0) -> RasterGrid:
    """A north-up UTM grid with :data:`ORIGIN` as upper-left corner."""
    transform = Affine(pixel, 0.0, ORIGIN[0], 0.0, -pixel, ORIGIN[1])
    return RasterGrid(UTM, transform, width, height)


def write_raster(path: str, data: np.ndarray, grid: RasterGrid,
                 nodata: Optional[float] = None) -> str:
    """Write ``data`` (bands, H, W) as a GeoTIFF on ``grid``; return path."""
    bands, height, width = data.shape
    assert (height, width) == (grid.height, grid.width)
    with rasterio.open(path, 'w', driver='GTiff', width=width,
                       height=height, count=bands, dtype=data.dtype,
                       crs=grid.crs, transform=grid.transform,
                       nodata=nodata) as dst:
        dst.write(data)
    return path


def reproject_grid(grid: RasterGrid, crs) -> RasterGrid:
    """The grid covering ``grid``'s extent in another CRS."""
    left, bottom, right, top = grid.bounds()
    transform, width, height = calculate_default_transform(
        grid.crs, crs, grid.width, grid.height, left, bottom, right, top)
    return RasterGrid(CRS.from_user_input(crs), transform, width, height)


def tmp_tif(folder, name: str) -> str:
    """``folder/name`` as a string path."""
    return osp.join(str(folder), name)
