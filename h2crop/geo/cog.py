"""Raster output: Cloud-Optimised GeoTIFFs, hidden temporary files, refusals.

Every raster h2crop writes for a user (maps, composites, cubes) goes
through here: the final file is made by :func:`write_cog` from an
intermediate GeoTIFF written beside it under a hidden name
(:func:`temp_path`), and an existing output is refused unless the user asked
to replace it (:func:`check_output`).
"""
import os
import os.path as osp

import rasterio
from rasterio.shutil import copy as raster_copy

#: Block (tile) size of the COGs written.
COG_BLOCK = 256
#: Smallest overview side aimed at when counting overview levels.
MIN_OVERVIEW_SIDE = 64


def check_output(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing ``path`` unless ``overwrite``.

    Raises:
        FileExistsError: Naming the file and the flag that replaces it.
    """
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite to replace '
                              'it')


def temp_path(out_path: str, tag: str, per_process: bool = True) -> str:
    """A hidden file beside ``out_path`` (its folder is created).

    Args:
        out_path: The final output.
        tag: Word naming the intermediate (``'strips'``, ``'cog'``, ...).
        per_process: Add the process id, unless the ranks of one run share
            the file.
    """
    folder = osp.dirname(osp.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    pid = f'.{os.getpid()}' if per_process else ''
    return osp.join(folder, f'.{osp.basename(out_path)}.{tag}{pid}.tif')


def overview_count(width: int, height: int) -> int:
    """Overview levels: halve until the smallest is about 64 px (>= 1)."""
    side = max(width, height)
    count = 1
    while side >> (count + 1) >= MIN_OVERVIEW_SIDE:
        count += 1
    return count


def cog_blocksize(width: int, height: int) -> int:
    """Tile side of a COG: :data:`COG_BLOCK`, or less for small rasters.

    A raster smaller than one block gets the smallest multiple of 16 (the
    GeoTIFF tile unit) that covers it, so that a 12 x 12 px, 218-band cube
    is not padded to 256 x 256 px tiles (20x the work to compress).
    """
    side = max(width, height)
    return COG_BLOCK if side >= COG_BLOCK else max(16, -(-side // 16) * 16)


def write_cog(src_path: str, out_path: str,
              resampling: str = 'nearest', compress: str = 'deflate',
              predictor: bool = False) -> None:
    """Copy a GeoTIFF into a tiled, compressed COG with overviews.

    The COG is written to a temporary name and renamed, so ``out_path``
    never holds a partial file.

    Args:
        src_path: The intermediate GeoTIFF.
        out_path: The COG.
        resampling: Overview resampling: ``'nearest'`` for class ids (ids
            must stay ids), ``'average'`` for reflectances.
        compress: GDAL compression of the blocks.
        predictor: Horizontal differencing before compression (smaller
            files for smooth integer data such as reflectances).
    """
    with rasterio.open(src_path) as src:
        count = overview_count(src.width, src.height)
        block = cog_blocksize(src.width, src.height)
    tmp = temp_path(out_path, 'cog')
    try:
        raster_copy(src_path, tmp, driver='COG', compress=compress,
                    blocksize=block, overview_resampling=resampling,
                    overview_count=count, resampling=resampling,
                    predictor='YES' if predictor else 'NO')
        os.replace(tmp, out_path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
