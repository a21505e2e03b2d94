"""Georeferenced synthetic scenes built from synthetic tiles.

Tiles (:mod:`h2crop.datasets.synthetic`) are laid out on a grid of
``rows x cols`` and written as GeoTIFFs in a UTM CRS: one 10-band S2 file
per month (or one file of T x 10 bands), a 218-band EnMAP file on the
S2-aligned 30 m grid (or reprojected into another CRS), a 4-band prior and
the 4-band label (for checking a map). Used by ``make demo`` and the tests.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    H5_DIR,
    H5_SUFFIX,
    PRIOR,
    S2,
    S2_BANDS,
)
from h2crop.datasets.h5io import LABEL, read_tile
from h2crop.geo.grid import RasterGrid, enmap_grid

#: Default CRS (UTM zone 33N) and an upper-left corner that is not a
#: multiple of the 10 m pixel.
DEFAULT_CRS = 'EPSG:32633'
DEFAULT_ORIGIN = (500003.7, 5300007.2)
#: Nodata of the written S2 / EnMAP rasters.
S2_NODATA = -32768


def mosaic_tiles(data_root: str, sample_ids: Sequence[str], rows: int,
                 cols: int) -> Dict[str, np.ndarray]:
    """Lay ``rows x cols`` tiles out row-major into one mosaic per content.

    Returns:
        ``s2`` (12, 10, H, W), ``enmap`` (218, H/3, W/3), ``prior`` and
        ``label`` (4, H, W) with H = rows x tile, W = cols x tile.
    """
    if len(sample_ids) < rows * cols:
        raise ValueError(f'{rows} x {cols} tiles need {rows * cols} ids, got '
                         f'{len(sample_ids)}')
    tiles = [read_tile(osp.join(data_root, H5_DIR, sid + H5_SUFFIX),
                       (S2, ENMAP, PRIOR)) for sid in sample_ids[:rows * cols]]
    out = {}
    for key in (S2, ENMAP, PRIOR, LABEL):
        grid_rows = [np.concatenate([tiles[r * cols + c][key]
                                     for c in range(cols)], axis=-1)
                     for r in range(rows)]
        out[key] = np.concatenate(grid_rows, axis=-2)
    return out


def _write(path: str, data: np.ndarray, grid: RasterGrid,
           nodata=None) -> str:
    with rasterio.open(path, 'w', driver='GTiff', width=grid.width,
                       height=grid.height, count=data.shape[0],
                       dtype=data.dtype, crs=grid.crs,
                       transform=grid.transform, nodata=nodata,
                       tiled=True, compress='deflate',
                       photometric='MINISBLACK') as dst:
        dst.write(data)
    return path


def write_scene(out_dir: str, mosaic: Dict[str, np.ndarray],
                height: Optional[int] = None, width: Optional[int] = None,
                months: int = 12, per_month: bool = True,
                crs: str = DEFAULT_CRS,
                origin: Sequence[float] = DEFAULT_ORIGIN,
                pixel: float = 10.0,
                enmap_crs: Optional[str] = None,
                nodata_box: Optional[Sequence[int]] = None
                ) -> Dict[str, object]:
    """Write a mosaic as a georeferenced scene.

    Args:
        out_dir: Folder (created).
        mosaic: From :func:`mosaic_tiles`.
        height: Crop the scene to this many rows (any size, e.g. not a
            multiple of the window); default the mosaic's.
        width: Crop the scene to this many columns (any size); default the
            mosaic's.
        months: Months written (January onwards).
        per_month: One S2 file per month, else one file of months x 10.
        crs: CRS of the S2 grid.
        origin: ``(x, y)`` of the S2 grid's upper-left corner, in CRS units.
        pixel: S2 pixel size in CRS units.
        enmap_crs: Reproject EnMAP into this CRS (another grid) instead of
            writing it on the S2-aligned 30 m grid.
        nodata_box: ``(row0, row1, col0, col1)`` of S2 pixels set to nodata
            in the first month.

    Returns:
        ``s2`` (list of paths), ``enmap``, ``prior``, ``label`` paths and the
        S2 ``grid``.
    """
    os.makedirs(out_dir, exist_ok=True)
    full_h, full_w = mosaic[S2].shape[-2:]
    height, width = height or full_h, width or full_w
    if height > full_h or width > full_w:
        raise ValueError(f'scene {height} x {width} larger than the mosaic '
                         f'{full_h} x {full_w}')
    transform = Affine(pixel, 0.0, origin[0], 0.0, -pixel, origin[1])
    grid = RasterGrid(CRS.from_user_input(crs), transform, width, height)
    s2 = mosaic[S2][:months, :, :height, :width].copy()
    if nodata_box is not None:
        r0, r1, c0, c1 = nodata_box
        s2[0, :, r0:r1, c0:c1] = S2_NODATA
    paths: Dict[str, object] = dict(grid=grid)
    if per_month:
        paths[S2] = [_write(osp.join(out_dir, f's2_month{m + 1:02d}.tif'),
                            s2[m], grid, S2_NODATA) for m in range(months)]
    else:
        # (T, 10, H, W) -> (T * 10, H, W), month-major
        stacked = s2.reshape(months * S2_BANDS, height, width)
        paths[S2] = [_write(osp.join(out_dir, 's2_stack.tif'), stacked, grid,
                            S2_NODATA)]
    coarse = enmap_grid(grid)
    enmap = mosaic[ENMAP][:, :coarse.height, :coarse.width]
    enmap_path = osp.join(out_dir, 'enmap.tif')
    if enmap_crs is None:
        _write(enmap_path, enmap, coarse, S2_NODATA)
    else:
        left, bottom, right, top = coarse.bounds()
        dst_t, dst_w, dst_h = calculate_default_transform(
            coarse.crs, enmap_crs, coarse.width, coarse.height, left, bottom,
            right, top)
        moved = np.full((enmap.shape[0], dst_h, dst_w), S2_NODATA,
                        dtype=enmap.dtype)
        reproject(enmap, moved, src_transform=coarse.transform,
                  src_crs=coarse.crs, dst_transform=dst_t, dst_crs=enmap_crs,
                  resampling=Resampling.bilinear, src_nodata=S2_NODATA,
                  dst_nodata=S2_NODATA)
        _write(enmap_path, moved,
               RasterGrid(CRS.from_user_input(enmap_crs), dst_t, dst_w,
                          dst_h), S2_NODATA)
    paths[ENMAP] = enmap_path
    paths[PRIOR] = _write(osp.join(out_dir, 'prior.tif'),
                          mosaic[PRIOR][:, :height, :width], grid)
    paths[LABEL] = _write(osp.join(out_dir, 'label.tif'),
                          mosaic[LABEL][:, :height, :width], grid)
    return paths


def scene_ids(data_root: str, split: str = 'test') -> List[str]:
    """Sample ids of a split list of a (synthetic) data root."""
    with open(osp.join(data_root, DATA_LISTS_DIR, f'{split}.txt')) as f:
        return [line.strip() for line in f if line.strip()]
