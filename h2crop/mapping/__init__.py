"""Mapping georeferenced scenes and tiles with a trained model."""
from h2crop.geo.grid import RasterGrid, enmap_grid, open_on_grid, read_grid

from .scene import (
                    SceneError,
                    SceneInputs,
                    SceneMapper,
                    map_scene_distributed,
                    write_preview,
)
from .tiles import collect_tiles, map_tiles

__all__ = ['RasterGrid', 'read_grid', 'enmap_grid', 'open_on_grid',
           'SceneError', 'SceneInputs', 'SceneMapper',
           'map_scene_distributed', 'write_preview', 'collect_tiles',
           'map_tiles']
