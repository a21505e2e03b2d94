"""Raster grids: CRS, affine transform and size of georeferenced images.

Sentinel-2 composites define the 10 m grid of a scene; EnMAP lives on the
30 m grid that shares S2's origin and CRS with a pixel
:data:`~h2crop.constants.ENMAP_SCALE` times larger (:func:`enmap_grid`).
:func:`open_on_grid` opens a raster so that it reads on a given grid,
resampling on the fly (rasterio ``WarpedVRT``) when the file lies elsewhere.
"""
import contextlib
import math
from dataclasses import dataclass
from typing import Iterator, List, Union

import numpy as np
import rasterio
from affine import Affine
from mmengine.logging import MMLogger
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

from h2crop.constants import ENMAP_SCALE


@dataclass(frozen=True)
class RasterGrid:
    """A georeferenced pixel grid.

    Args:
        crs: Coordinate reference system.
        transform: Affine map from (col, row) pixel corners to CRS
            coordinates (north-up grids have ``transform.e < 0``).
        width: Columns.
        height: Rows.
    """

    crs: CRS
    transform: Affine
    width: int
    height: int

    @classmethod
    def from_dataset(cls, ds) -> 'RasterGrid':
        """The grid of an open rasterio dataset (reader, writer or VRT)."""
        return cls(crs=ds.crs, transform=ds.transform, width=int(ds.width),
                   height=int(ds.height))

    @property
    def shape(self) -> tuple:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def pixel_size(self) -> tuple:
        """``(x size, y size)`` of a pixel in CRS units.

        The y size is negative if the grid is north-up.
        """
        return (self.transform.a, self.transform.e)

    def differences(self, other: 'RasterGrid',
                    atol: float = 1e-6) -> List[str]:
        """What differs between two grids, as short phrases.

        Args:
            other: The grid compared with.
            atol: Absolute tolerance on transform coefficients, in CRS units
                (pixel size) and pixels (origin: the offset is measured in
                pixels of ``self``).

        Returns:
            Empty when the grids are the same; else phrases among ``'CRS'``,
            ``'pixel size'``, ``'rotation'``, ``'origin'``, ``'size'``.
        """
        out = []
        if not same_crs(self.crs, other.crs):
            out.append(f'CRS ({crs_name(other.crs)} vs '
                       f'{crs_name(self.crs)})')
        a, b = self.transform, other.transform
        if not (math.isclose(a.a, b.a, abs_tol=atol)
                and math.isclose(a.e, b.e, abs_tol=atol)):
            out.append(f'pixel size ({b.a:g}, {b.e:g} vs {a.a:g}, {a.e:g})')
        if not (math.isclose(a.b, b.b, abs_tol=atol)
                and math.isclose(a.d, b.d, abs_tol=atol)):
            out.append('rotation')
        # origin offset in pixels of self, so the tolerance is scale-free
        dx = (b.c - a.c) / a.a if a.a else b.c - a.c
        dy = (b.f - a.f) / a.e if a.e else b.f - a.f
        if abs(dx) > atol or abs(dy) > atol:
            out.append(f'origin ({b.c:.3f}, {b.f:.3f} vs '
                       f'{a.c:.3f}, {a.f:.3f})')
        if (self.width, self.height) != (other.width, other.height):
            out.append(f'size ({other.width} x {other.height} vs '
                       f'{self.width} x {self.height})')
        return out

    def same_as(self, other: 'RasterGrid', atol: float = 1e-6) -> bool:
        """Whether CRS, transform (within ``atol``) and size agree."""
        return not self.differences(other, atol)

    def bounds(self) -> tuple:
        """``(left, bottom, right, top)`` in CRS units (north-up grids)."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(bottom, top), max(left, right),
                max(bottom, top))


def same_crs(a, b) -> bool:
    """Whether two CRSs (or two missing ones) are the same."""
    if a is None or b is None:
        return a is None and b is None
    return CRS.from_user_input(a) == CRS.from_user_input(b)


def crs_name(crs) -> str:
    """A short name of a CRS (``EPSG:32633`` or the start of its WKT)."""
    if crs is None:
        return 'none'
    epsg = crs.to_epsg()
    return f'EPSG:{epsg}' if epsg else crs.to_string()[:40]


def read_grid(path: str) -> RasterGrid:
    """The grid of a raster file.

    Raises:
        rasterio.errors.RasterioIOError: When the file cannot be opened.
    """
    with rasterio.open(path) as ds:
        return RasterGrid.from_dataset(ds)


def enmap_grid(s2_grid: RasterGrid, scale: int = ENMAP_SCALE) -> RasterGrid:
    """The coarse grid of EnMAP for an S2 grid.

    Same CRS and origin as ``s2_grid``, a pixel ``scale`` times larger and
    ``ceil(W / scale)`` x ``ceil(H / scale)`` pixels, so that coarse pixel
    ``(i, j)`` covers S2 pixels ``scale*i .. scale*i + scale - 1`` (the last
    coarse row / column may reach past the S2 grid).
    """
    if scale < 1:
        raise ValueError(f'scale must be >= 1, got {scale}')
    transform = s2_grid.transform @ Affine.scale(scale)
    return RasterGrid(crs=s2_grid.crs, transform=transform,
                      width=-(-s2_grid.width // scale),
                      height=-(-s2_grid.height // scale))


def bounds_grid(crs, bounds, pixel: float) -> RasterGrid:
    """The north-up grid of ``pixel`` size that covers ``bounds``.

    The edges are snapped outwards to multiples of ``pixel`` (a 10 m grid
    over ``(500003, ..)`` starts at 500000), so that grids made from
    overlapping bounds in one CRS share their pixel edges.

    Args:
        crs: The grid's CRS (anything ``CRS.from_user_input`` reads).
        bounds: ``(left, bottom, right, top)`` in ``crs`` units.
        pixel: Pixel size in ``crs`` units.

    Raises:
        ValueError: For a pixel size <= 0, an empty box or a CRS that
            cannot be read.
    """
    left, bottom, right, top = (float(v) for v in bounds)
    if not pixel > 0:
        raise ValueError(f'pixel size {pixel} must be > 0')
    if not (right > left and top > bottom):
        raise ValueError(f'bounds {tuple(bounds)} are empty: expected '
                         'left < right and bottom < top')
    x0 = math.floor(left / pixel) * pixel
    y0 = math.ceil(top / pixel) * pixel
    width = math.ceil(round((right - x0) / pixel, 9))
    height = math.ceil(round((y0 - bottom) / pixel, 9))
    return RasterGrid(crs=CRS.from_user_input(crs),
                      transform=Affine(pixel, 0.0, x0, 0.0, -pixel, y0),
                      width=int(width), height=int(height))


def fill_value(dtype: str) -> float:
    """Nodata sentinel for a raster data type without a nodata value.

    NaN for floats, the minimum of signed and the maximum of unsigned
    integers (e.g. -32768 for int16, 255 for uint8).
    """
    kind = np.dtype(dtype)
    if np.issubdtype(kind, np.floating):
        return float('nan')
    info = np.iinfo(kind)
    return float(info.min if info.min < 0 else info.max)


@contextlib.contextmanager
def open_on_grid(path: str,
                 grid: RasterGrid,
                 resampling: Resampling = Resampling.bilinear,
                 name: str = 'EnMAP'
                 ) -> Iterator[Union[DatasetReader, WarpedVRT]]:
    """Open a raster so that it reads on ``grid``.

    Yields the file itself when it already lies on ``grid`` (same CRS,
    transform and size); otherwise a ``WarpedVRT`` that resamples it onto
    ``grid`` on the fly (window reads warp only that window), after logging
    a warning that names the file and how it differs.

    Args:
        path: Raster file.
        grid: Target grid.
        resampling: Resampling method of the warp.
        name: What the file is, for the warning (e.g. ``'EnMAP'``).
    """
    with rasterio.open(path) as src:
        own = RasterGrid.from_dataset(src)
        diffs = grid.differences(own)
        if not diffs:
            yield src
            return
        if src.crs is None:
            raise ValueError(f'{path}: {name} raster has no CRS; cannot '
                             'resample it onto the target grid')
        MMLogger.get_current_instance().warning(
            f'{name} {path} is not on the target grid ({"; ".join(diffs)}); '
            f'resampling it on the fly ({resampling.name})')
        # pixels the file does not cover must read as nodata: a file
        # without one gets a sentinel its data type cannot hold as a
        # reflectance / class id (NaN, the int minimum or uint maximum)
        extra = dict(src_nodata=src.nodata, nodata=src.nodata) \
            if src.nodata is not None else \
            dict(nodata=fill_value(src.dtypes[0]))
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform,
                       width=grid.width, height=grid.height,
                       resampling=resampling, **extra) as vrt:
            yield vrt
