"""Reading tiles of a scene: 12 monthly S2 composites and one EnMAP image.

The first S2 month defines the 10 m grid of the scene. Other months must
lie on it (else they are resampled on the fly with a warning); EnMAP is read
on the 30 m grid that shares the S2 origin
(:func:`~h2crop.geo.grid.enmap_grid`), resampled on the fly with a
warning when the file lies elsewhere (another origin, pixel size or CRS).

Tile ``(row, col)`` covers S2 pixels ``row*T .. row*T+T-1`` by
``col*T .. col*T+T-1`` and EnMAP pixels ``row*T/3 .. (row+1)*T/3 - 1``
likewise. Only whole tiles are cut; the remaining strip at the right and
bottom edge is reported.
"""
import contextlib
from typing import Dict, List, Sequence, Tuple

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

from h2crop.constants import (
    ENMAP,
    ENMAP_BANDS,
    ENMAP_DTYPE,
    ENMAP_SCALE,
    NUM_MONTHS,
    S2,
    S2_BANDS,
    S2_DTYPE,
)
from h2crop.geo.grid import RasterGrid, enmap_grid, open_on_grid, read_grid

#: Key of the valid-pixel mask in :meth:`SceneReader.read_tile`.
VALID = 'valid'


class RasterDataError(ValueError):
    """A raster has the wrong number of bands or cannot be used."""


def _to_dtype(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Cast to ``dtype``, clipping to its range (no wrap-around)."""
    if arr.dtype == np.dtype(dtype):
        return arr
    info = np.iinfo(dtype)
    return np.clip(arr, info.min, info.max).astype(dtype)


class SceneReader:
    """Reads aligned S2 / EnMAP tiles of a scene.

    Use as a context manager (opens the files, possibly as warped VRTs).

    Args:
        s2_paths: One raster of :data:`~h2crop.constants.S2_BANDS` bands per
            month, January first (:data:`~h2crop.constants.NUM_MONTHS`).
        enmap_path: EnMAP raster of
            :data:`~h2crop.constants.ENMAP_BANDS` bands.
        tile_size: Tile side in S2 pixels (a multiple of 3).
    """

    def __init__(self, s2_paths: Sequence[str], enmap_path: str,
                 tile_size: int) -> None:
        if len(s2_paths) != NUM_MONTHS:
            raise RasterDataError(f'{len(s2_paths)} S2 files given; expected '
                                  f'one per month ({NUM_MONTHS}, --s2)')
        if tile_size <= 0 or tile_size % ENMAP_SCALE:
            raise ValueError(f'tile size {tile_size} must be a positive '
                             f'multiple of {ENMAP_SCALE} (--tile-size)')
        self.s2_paths = list(s2_paths)
        self.enmap_path = enmap_path
        self.tile_size = int(tile_size)
        self.grid: RasterGrid = read_grid(self.s2_paths[0])
        if self.grid.crs is None:
            raise RasterDataError(f'{self.s2_paths[0]}: S2 raster has no '
                                  'CRS; the tiles need a georeference')
        self.enmap_grid = enmap_grid(self.grid, ENMAP_SCALE)
        self._stack = None

    # ------------------------------------------------------------ geometry
    @property
    def tile_grid(self) -> Tuple[int, int]:
        """``(rows, cols)`` of whole tiles."""
        return (self.grid.height // self.tile_size,
                self.grid.width // self.tile_size)

    def tile_positions(self) -> List[Tuple[int, int]]:
        """``(row, col)`` of every whole tile, row-major."""
        rows, cols = self.tile_grid
        return [(r, c) for r in range(rows) for c in range(cols)]

    def uncovered_pixels(self) -> int:
        """S2 pixels of the right / bottom strip that no whole tile covers."""
        rows, cols = self.tile_grid
        covered = rows * cols * self.tile_size**2
        return self.grid.width * self.grid.height - covered

    def tile_transform(self, row: int, col: int) -> Affine:
        """Affine transform of a tile's S2 grid."""
        return self.grid.transform @ Affine.translation(
            col * self.tile_size, row * self.tile_size)

    # ------------------------------------------------------------ reading
    def __enter__(self) -> 'SceneReader':
        stack = contextlib.ExitStack()
        try:
            self._months = []
            for m, path in enumerate(self.s2_paths, start=1):
                ds = stack.enter_context(open_on_grid(
                    path, self.grid, Resampling.bilinear,
                    name=f'S2 month {m}'))
                if ds.count != S2_BANDS:
                    raise RasterDataError(f'{path}: {ds.count} bands; '
                                          f'expected {S2_BANDS} (S2 month '
                                          f'{m})')
                self._months.append(ds)
            self._enmap = stack.enter_context(open_on_grid(
                self.enmap_path, self.enmap_grid, Resampling.bilinear,
                name='EnMAP'))
            if self._enmap.count != ENMAP_BANDS:
                raise RasterDataError(f'{self.enmap_path}: '
                                      f'{self._enmap.count} bands; expected '
                                      f'{ENMAP_BANDS} (EnMAP)')
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def read_tile(self, row: int, col: int) -> Dict[str, np.ndarray]:
        """S2, EnMAP and the valid-pixel mask of one tile.

        Returns:
            dict with ``'s2'`` int16 (12, 10, T, T), ``'enmap'`` int16
            (218, T/3, T/3) and ``'valid'`` bool (T, T): pixels with data
            (GDAL mask: nodata value, alpha or internal mask) in every month
            and in EnMAP.
        """
        if self._stack is None:
            raise RuntimeError('open the SceneReader with `with` first')
        t = self.tile_size
        small = t // ENMAP_SCALE
        win = Window(col * t, row * t, t, t)
        s2 = np.empty((NUM_MONTHS, S2_BANDS, t, t), dtype=S2_DTYPE)
        valid = np.ones((t, t), dtype=bool)
        for m, ds in enumerate(self._months):
            s2[m] = _to_dtype(ds.read(window=win), S2_DTYPE)
            valid &= ds.read_masks(1, window=win) > 0
        ewin = Window(col * small, row * small, small, small)
        enmap = _to_dtype(self._enmap.read(window=ewin, boundless=False),
                          ENMAP_DTYPE)
        emask = self._enmap.read_masks(1, window=ewin) > 0  # (t/3, t/3)
        # (t/3, t/3) -> (t, t): every EnMAP pixel covers 3 x 3 S2 pixels
        valid &= np.repeat(np.repeat(emask, ENMAP_SCALE, 0), ENMAP_SCALE, 1)
        return {S2: s2, ENMAP: enmap, VALID: valid}
