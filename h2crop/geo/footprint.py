"""Footprints of rasters and how much of a target grid they cover.

Inputs of a scene or a region may come in different CRSs (S2 in the UTM
zone of its tile, EnMAP in another zone, a prior in a national CRS). Before
any pixel is read, the tools intersect the footprints in the target grid's
CRS: no overlap is an error, a partial one is reported as the share of the
target each input covers. A footprint is the grid's outline, densified
before it is reprojected so that curved edges stay close to the truth.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import shapely
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from .grid import RasterGrid, crs_name, read_grid, same_crs

#: Points added along each edge of an outline before reprojection.
DENSIFY_POINTS = 32


def grid_outline(grid: RasterGrid) -> shapely.Polygon:
    """The grid's outline in its own CRS (pixel corners, any rotation)."""
    corners = [grid.transform @ (col, row) for col, row in
               ((0, 0), (grid.width, 0), (grid.width, grid.height),
                (0, grid.height))]
    return shapely.Polygon(corners)


def footprint(grid: RasterGrid, crs: Optional[CRS] = None,
              densify: int = DENSIFY_POINTS) -> shapely.Geometry:
    """The outline of ``grid`` in ``crs`` (default: the grid's own).

    Args:
        grid: The raster's grid.
        crs: Target CRS.
        densify: Points inserted along each edge before reprojection.

    Raises:
        ValueError: When the grid has no CRS but another CRS is asked for.
    """
    outline = grid_outline(grid)
    if crs is None or same_crs(grid.crs, crs):
        return outline
    if grid.crs is None:
        raise ValueError('a raster without CRS has no footprint in '
                         f'{crs_name(crs)}')
    side = max(outline.length / 4 / max(densify, 1), 1e-9)
    dense = shapely.segmentize(outline, side)
    geom = transform_geom(grid.crs, crs, shapely.geometry.mapping(dense))
    return shapely.make_valid(shapely.geometry.shape(geom))


@dataclass(frozen=True)
class Coverage:
    """How much of a target grid one input covers.

    Args:
        name: What the input is (``'EnMAP'``, ``'prior'``, ...).
        path: Its file.
        share: Covered fraction of the target's area, 0..1.
        bounds: The input's footprint bounds ``(left, bottom, right, top)``
            in the target's CRS.
    """

    name: str
    path: str
    share: float
    bounds: tuple

    def describe(self) -> str:
        """One phrase: name, file, share and bounds."""
        return (f'{self.name} {self.path} covers {self.share:.1%} '
                f'(bounds {_fmt_bounds(self.bounds)})')


def _fmt_bounds(bounds: Sequence[float]) -> str:
    return '(' + ', '.join(f'{v:.1f}' for v in bounds) + ')'


def coverage(target: RasterGrid, grid: RasterGrid, name: str = 'input',
             path: str = '') -> Coverage:
    """The share of ``target`` that ``grid``'s footprint covers.

    Args:
        target: The output grid (e.g. the S2 grid of a map).
        grid: An input's grid, in any CRS.
        name: What the input is, for messages.
        path: Its file, for messages.
    """
    area = grid_outline(target)
    other = footprint(grid, target.crs)
    share = area.intersection(other).area / area.area if area.area else 0.
    return Coverage(name, path, float(min(max(share, 0.), 1.)),
                    tuple(other.bounds))


def file_coverage(target: RasterGrid, path: str,
                  name: str = 'input') -> Coverage:
    """:func:`coverage` of the raster file ``path``."""
    return coverage(target, read_grid(path), name, path)


def joint_share(target: RasterGrid, grids: Sequence[RasterGrid]) -> float:
    """The share of ``target`` that every one of ``grids`` covers, 0..1.

    Each input may cover part of the target and the parts may still miss
    each other; a pixel is mapped only where all of them have data.
    """
    area = grid_outline(target)
    if not area.area:
        return 0.
    common = area
    for grid in grids:
        common = common.intersection(footprint(grid, target.crs))
    return float(min(max(common.area / area.area, 0.), 1.))


def target_description(target: RasterGrid, path: str = '') -> str:
    """The target's file, CRS and bounds, for messages."""
    where = f'{path} ' if path else ''
    return (f'{where}({crs_name(target.crs)}, bounds '
            f'{_fmt_bounds(grid_outline(target).bounds)})')
