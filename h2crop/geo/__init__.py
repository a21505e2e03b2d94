"""Grids, windows and raster I/O shared by mapping, converters and products.

The lowest room of the geodata code: it imports nothing of h2crop but its
constants, and :mod:`h2crop.mapping`, :mod:`h2crop.datasets.converters` and
:mod:`h2crop.products` all build on it.
"""
from .cog import check_output, temp_path, write_cog
from .footprint import Coverage, coverage, file_coverage, footprint
from .grid import (
    RasterGrid,
    bounds_grid,
    crs_name,
    enmap_grid,
    fill_value,
    open_on_grid,
    read_grid,
    same_crs,
)

__all__ = ['RasterGrid', 'read_grid', 'enmap_grid', 'bounds_grid',
           'fill_value', 'crs_name', 'same_crs', 'Coverage', 'coverage',
           'file_coverage', 'footprint', 'open_on_grid', 'check_output',
           'temp_path', 'write_cog']
