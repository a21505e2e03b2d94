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
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import rasterio
from affine import Affine
from mmengine.logging import MMLogger
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform

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

    @classmethod
    def from_bounds(cls, crs, bounds: Sequence[float], resolution: float,
                    snap: bool = True) -> 'RasterGrid':
        """A north-up grid of square pixels covering ``bounds``.

        Args:
            crs: Coordinate reference system (anything
                ``CRS.from_user_input`` accepts).
            bounds: ``(left, bottom, right, top)`` in CRS units.
            resolution: Pixel side in CRS units (> 0).
            snap: Move the edges outwards to multiples of ``resolution``,
                so that grids of one resolution share pixel edges (the
                Sentinel-2 tiles' 10 m grids have edges at multiples of
                10 m).

        Raises:
            ValueError: For an empty box or a resolution that is not
                positive.
        """
        left, bottom, right, top = (float(v) for v in bounds)
        if not resolution > 0:
            raise ValueError(f'resolution must be positive, got '
                             f'{resolution}')
        if not (right > left and top > bottom):
            raise ValueError(f'bounds {tuple(bounds)} are empty: expected '
                             'left < right and bottom < top')
        if snap:
            left = math.floor(left / resolution) * resolution
            top = math.ceil(top / resolution) * resolution
        width = math.ceil((right - left) / resolution - 1e-9)
        height = math.ceil((top - bottom) / resolution - 1e-9)
        transform = Affine(resolution, 0.0, left, 0.0, -resolution, top)
        return cls(crs=CRS.from_user_input(crs), transform=transform,
                   width=int(width), height=int(height))

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

    def pixel_size_m(self) -> Optional[Tuple[float, float]]:
        """``(x size, y size)`` of a pixel in metres, both positive.

        None when the CRS is missing or not projected (degrees). Rotated
        grids are measured along their columns and rows.
        """
        if self.crs is None or not self.crs.is_projected:
            return None
        factor = self.crs.linear_units_factor[1]
        t = self.transform
        return (math.hypot(t.a, t.d) * factor, math.hypot(t.b, t.e) * factor)

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


def grid_with_pixel(grid: RasterGrid, pixel: float,
                    crs: Optional[CRS] = None) -> RasterGrid:
    """A north-up grid over ``grid``'s extent with square ``pixel`` cells.

    Args:
        grid: The grid whose extent is kept.
        pixel: Pixel size in the units of the output CRS.
        crs: Output CRS (default: the grid's own, which keeps the origin;
            another CRS covers the reprojected extent).
    """
    if crs is None or same_crs(crs, grid.crs):
        left, bottom, right, top = grid.bounds()
        transform = Affine(pixel, 0.0, left, 0.0, -pixel, top)
        return RasterGrid(grid.crs, transform,
                          max(1, math.ceil((right - left) / pixel - 1e-9)),
                          max(1, math.ceil((top - bottom) / pixel - 1e-9)))
    transform, width, height = calculate_default_transform(
        grid.crs, crs, grid.width, grid.height, *grid.bounds(),
        resolution=pixel)
    return RasterGrid(CRS.from_user_input(crs), transform, int(width),
                      int(height))


def utm_crs(grid: RasterGrid) -> CRS:
    """The UTM zone (WGS 84) of a grid's centre."""
    from pyproj import Transformer
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info
    left, bottom, right, top = grid.bounds()
    lon, lat = Transformer.from_crs(grid.crs, 'EPSG:4326', always_xy=True
                                    ).transform((left + right) / 2,
                                                (bottom + top) / 2)
    info = query_utm_crs_info(datum_name='WGS 84', area_of_interest=(
        AreaOfInterest(lon, lat, lon, lat)))
    return CRS.from_epsg(int(info[0].code))


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
                 name: str = 'EnMAP',
                 warn: bool = True
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
        warn: Log the warning (off when the caller says it once for
            several files).
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
        if warn:
            MMLogger.get_current_instance().warning(
                f'{name} {path} is not on the target grid '
                f'({"; ".join(diffs)}); resampling it on the fly '
                f'({resampling.name})')
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
