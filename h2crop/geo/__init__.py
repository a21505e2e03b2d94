"""Grids, windows and raster I/O shared by mapping, converters and products.

The lowest room of the geodata code: it imports nothing of h2crop but its
constants, and :mod:`h2crop.mapping`, :mod:`h2crop.datasets.converters` and
:mod:`h2crop.products` all build on it.
"""
from .cog import check_output, temp_path, write_cog
from .footprint import (
    Coverage,
    coverage,
    file_coverage,
    footprint,
    joint_share,
    target_description,
)
from .grid import (
    RasterGrid,
    crs_name,
    enmap_grid,
    fill_value,
    grid_with_pixel,
    open_on_grid,
    read_grid,
    same_crs,
    utm_crs,
)

__all__ = ['RasterGrid', 'read_grid', 'enmap_grid', 'fill_value', 'crs_name',
           'same_crs', 'grid_with_pixel', 'utm_crs', 'Coverage', 'coverage',
           'file_coverage', 'footprint', 'joint_share', 'target_description',
           'open_on_grid', 'check_output', 'temp_path', 'write_cog']
