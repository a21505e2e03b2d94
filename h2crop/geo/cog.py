"""Raster output: Cloud-Optimised GeoTIFFs, hidden temporary files, refusals.

Every raster h2crop writes for a user (maps, composites, cubes) goes
through here: the final file is made by :func:`write_cog` from an
intermediate GeoTIFF written beside it under a hidden name
(:func:`temp_path`), and an existing output is refused unless the user asked
to replace it (:func:`check_output`). Rasters of many bands with no-data
get their average overviews from :class:`AverageOverviews` while their rows
are written (GDAL's own are slow there).
"""
import os
import os.path as osp
from typing import List, Optional, Sequence
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
from affine import Affine
from rasterio.dtypes import dtype_rev, typename_fwd
from rasterio.shutil import copy as raster_copy

from .grid import RasterGrid

#: Block (tile) size of the COGs written.
COG_BLOCK = 256
#: Smallest overview side aimed at when counting overview levels.
MIN_OVERVIEW_SIDE = 64
#: GDAL block cache (MB) while streaming rasters block by block: bounded so
#: that memory does not grow with the area (GDAL's default is 5 % of the
#: machine's RAM). Enter it with :func:`bounded_gdal_cache`, never as
#: ``rasterio.Env(GDAL_CACHEMAX=...)`` by hand: rasterio hands an integer
#: to ``GDALSetCacheMax64``, i.e. in bytes, so ``GDAL_CACHEMAX=64`` is a
#: 64-byte cache in which every block is decoded again for each band read
#: (a 218-band warped EnMAP strip read about 100x slower).
GDAL_CACHE_MB = 64


def bounded_gdal_cache() -> rasterio.Env:
    """A ``rasterio.Env`` whose GDAL block cache is ``GDAL_CACHE_MB`` MB.

    Use as ``with bounded_gdal_cache(): ...`` around block-wise raster
    streaming (mapping, composites, cubes).
    """
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024)


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
              predictor: bool = False,
              overviews: Optional[Sequence[str]] = None) -> None:
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
        overviews: Overview levels made already (largest first, e.g. by
            :class:`AverageOverviews`); used instead of GDAL's.
    """
    with rasterio.open(src_path) as src:
        count = overview_count(src.width, src.height)
        block = cog_blocksize(src.width, src.height)
    tmp = temp_path(out_path, 'cog')
    vrt = temp_path(out_path, 'ovr').replace('.tif', '.vrt')
    options = dict(driver='COG', compress=compress, blocksize=block,
                   resampling=resampling,
                   predictor='YES' if predictor else 'NO')
    if overviews:
        write_overview_vrt(src_path, overviews, vrt)
        options.update(overviews='FORCE_USE_EXISTING')
        source = vrt
    else:
        options.update(overview_resampling=resampling,
                       overview_count=count)
        source = src_path
    try:
        raster_copy(source, tmp, **options)
        os.replace(tmp, out_path)
    finally:
        for path in (tmp, vrt):
            if osp.exists(path):
                os.remove(path)


def _metadata_xml(tags: dict, domain: str = '') -> str:
    if not tags:
        return ''
    attr = f' domain={quoteattr(domain)}' if domain else ''
    items = ''.join(f'<MDI key={quoteattr(str(k))}>{escape(str(v))}</MDI>'
                    for k, v in tags.items())
    return f'<Metadata{attr}>{items}</Metadata>'


def write_overview_vrt(src_path: str, overviews: Sequence[str],
                       vrt_path: str) -> None:
    """A VRT of ``src_path`` (metadata included) with given overviews.

    Band descriptions, no-data, the dataset's and bands' tags (default and
    ``IMAGERY`` domains) are copied, so that a COG made from the VRT keeps
    them.
    """
    with rasterio.open(src_path) as src:
        dtype = typename_fwd[dtype_rev[src.dtypes[0]]]  # 'int16' -> 'Int16'
        geo = ', '.join(repr(v) for v in src.transform.to_gdal())
        parts = [f'<VRTDataset rasterXSize="{src.width}" '
                 f'rasterYSize="{src.height}">',
                 f'<SRS>{escape(src.crs.to_wkt())}</SRS>' if src.crs else '',
                 f'<GeoTransform>{geo}</GeoTransform>',
                 _metadata_xml(src.tags())]
        for band in range(1, src.count + 1):
            desc = src.descriptions[band - 1]
            nodata = src.nodata
            parts.append(
                f'<VRTRasterBand dataType="{dtype}" band="{band}">' +
                (f'<NoDataValue>{nodata!r}</NoDataValue>'
                 if nodata is not None else '') +
                (f'<Description>{escape(desc)}</Description>'
                 if desc else '') +
                _metadata_xml(src.tags(band)) +
                _metadata_xml(src.tags(band, ns='IMAGERY'), 'IMAGERY') +
                _source_xml(src_path, band, 'SimpleSource') +
                ''.join(_source_xml(o, band, 'Overview') for o in overviews)
                + '</VRTRasterBand>')
        parts.append('</VRTDataset>')
    with open(vrt_path, 'w', encoding='utf-8') as f:
        f.write(''.join(parts))


def _source_xml(path: str, band: int, tag: str) -> str:
    name = escape(osp.abspath(path))
    return (f'<{tag}><SourceFilename relativeToVRT="0">{name}'
            f'</SourceFilename><SourceBand>{band}</SourceBand></{tag}>')


class AverageOverviews:
    """Average overviews of a raster whose rows are written in blocks.

    GDAL's average overviews of a raster of many bands with no-data take
    most of the COG time and grow faster than the area (218-band cube: 30 s
    of 41 s at 490 x 490 px, 300 s at 990 x 990 px); here each block of
    full-resolution rows given to :meth:`push` is summed into the levels
    right away. Level ``l`` holds per ``2^l x 2^l`` block the mean of its
    valid full-resolution pixels (rounded; no-data where none is valid),
    with ``ceil(size / 2^l)`` pixels like GDAL's. The levels are hidden
    GeoTIFFs beside the output (:func:`temp_path`), handed to
    :func:`write_cog` by :meth:`close`.

    Args:
        out_path: The final output (the levels are named after it).
        grid: Its full-resolution grid.
        count: Bands.
        dtype: Integer data type.
        nodata: No-data value of the raster.
        levels: Overview levels; default :func:`overview_count`.
    """

    def __init__(self, out_path: str, grid: RasterGrid, count: int,
                 dtype: str, nodata: float,
                 levels: Optional[int] = None) -> None:
        self.levels = levels or overview_count(grid.width, grid.height)
        self.nodata = nodata
        self.dtype = dtype
        info = np.iinfo(dtype)
        biggest = max(abs(info.min), abs(info.max)) * 4**self.levels
        self.sum_dtype = np.int32 if biggest < 2**31 else np.int64
        self.paths: List[str] = []
        self._files = []
        self._rows: List[int] = []
        self._pending: List[Optional[tuple]] = []
        for level in range(1, self.levels + 1):
            f = 2**level
            path = temp_path(out_path, f'ovr{level}')
            self.paths.append(path)
            self._files.append(rasterio.open(
                path, 'w', driver='GTiff', width=-(-grid.width // f),
                height=-(-grid.height // f), count=count, dtype=dtype,
                crs=grid.crs, transform=grid.transform @ Affine.scale(f),
                nodata=nodata, compress='deflate', zlevel=1, predictor=2,
                tiled=False, interleave='band'))
            self._rows.append(0)
            self._pending.append(None)

    def push(self, rows: np.ndarray) -> None:
        """Add the next full-resolution rows, (bands, r, W)."""
        valid = rows != self.nodata
        total = np.where(valid, rows, 0).astype(self.sum_dtype)
        self._feed(0, total, valid.astype(self.sum_dtype))

    def _feed(self, level: int, total: np.ndarray,
              count: np.ndarray) -> None:
        """Sums and counts of rows of the level above ``level``."""
        if self._pending[level] is not None:
            ptot, pcount = self._pending[level]
            total = np.concatenate([ptot, total], axis=1)
            count = np.concatenate([pcount, count], axis=1)
            self._pending[level] = None
        rows = total.shape[1] // 2 * 2
        if rows < total.shape[1]:  # an odd row waits for the next block
            self._pending[level] = (total[:, rows:], count[:, rows:])
        if rows:
            self._write(level, *self._halve(total[:, :rows],
                                            count[:, :rows]))

    @staticmethod
    def _halve(total: np.ndarray, count: np.ndarray) -> tuple:
        """2 x 2 sums of (bands, 2r, W) -> (bands, r, ceil(W / 2))."""
        if total.shape[2] % 2:  # the last column alone: pad with zeros
            pad = ((0, 0), (0, 0), (0, 1))
            total, count = np.pad(total, pad), np.pad(count, pad)
        k, r2, w2 = total.shape
        # (k, 2r, 2w) -> (k, r, 2, w, 2) -> sums over the 2 x 2 blocks
        shape = (k, r2 // 2, 2, w2 // 2, 2)
        return (total.reshape(shape).sum(axis=(2, 4)),
                count.reshape(shape).sum(axis=(2, 4)))

    def _write(self, level: int, total: np.ndarray,
               count: np.ndarray) -> None:
        mean = np.floor(total / np.maximum(count, 1) + 0.5)
        out = np.where(count > 0, mean, self.nodata).astype(self.dtype)
        dst, row = self._files[level], self._rows[level]
        dst.write(out, window=((row, row + out.shape[1]),
                               (0, out.shape[2])))
        self._rows[level] += out.shape[1]
        if level + 1 < self.levels:
            self._feed(level + 1, total, count)

    def close(self) -> List[str]:
        """Flush the odd last rows and close the levels; their paths."""
        for level in range(self.levels):
            if self._pending[level] is not None:
                total, count = self._pending[level]
                self._pending[level] = None
                # the last row of an odd height alone: pair it with nothing
                self._write(level, *self._halve(
                    np.concatenate([total, np.zeros_like(total)], axis=1),
                    np.concatenate([count, np.zeros_like(count)], axis=1)))
        for f in self._files:
            f.close()
        self._files = []
        return list(self.paths)

    def remove(self) -> None:
        """Close and delete the level files."""
        for f in self._files:
            f.close()
        self._files = []
        for path in self.paths:
            if osp.exists(path):
                os.remove(path)
