"""Mapping georeferenced scenes and tiles with a trained model."""
from .grid import RasterGrid, enmap_grid, open_on_grid, read_grid

__all__ = ['RasterGrid', 'read_grid', 'enmap_grid', 'open_on_grid']
