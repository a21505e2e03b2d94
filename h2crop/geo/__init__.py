"""Grids, windows and raster I/O shared by mapping, converters and products.

The lowest room of the geodata code: it imports nothing of h2crop but its
constants, and :mod:`h2crop.mapping`, :mod:`h2crop.datasets.converters` and
:mod:`h2crop.products` all build on it.
"""
from .cog import check_output, temp_path, write_cog
from .grid import RasterGrid, enmap_grid, fill_value, open_on_grid, read_grid

__all__ = ['RasterGrid', 'read_grid', 'enmap_grid', 'fill_value',
           'open_on_grid', 'check_output', 'temp_path', 'write_cog']
