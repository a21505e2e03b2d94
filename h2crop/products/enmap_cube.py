"""The dataset's EnMAP cube from L2A products, on the S2-aligned 30 m grid.

:func:`build_enmap_cube` writes one int16 Cloud-Optimised GeoTIFF of the
218 cube bands (reflectance x 10^4, no-data -32768) on
:func:`~h2crop.geo.grid.enmap_grid` of a Sentinel-2 10 m grid, so that
every cube pixel covers 3 x 3 S2 pixels:

1. every product's bands are matched to the cube's by wavelength
   (:func:`~h2crop.products.enmap.select_bands`; a mismatch is refused),
   its footprint is intersected with the grid (no overlap at all is an
   error naming the footprints);
2. the grid is processed in blocks of rows (memory bounded by
   ``max_block_mb``, never a whole scene): per product the block's window
   is read, scaled (DN x gain + offset, x 10^4) and masked (no-data,
   clouds, haze, ... set to NaN) on the product's own grid, then read
   directly when that grid is the target's (same CRS, pixel size and a
   whole-pixel offset) or warped onto it (bilinear; the warp leaves masked
   pixels out and renormalises, so clouds do not bleed into clear
   pixels);
3. per pixel the latest product with a clear value wins; earlier products
   fill where the later ones are masked or absent.

The average overviews are summed while the rows are written
(:class:`~h2crop.geo.cog.AverageOverviews`). Beside the cube it writes
``<cube>_source.tif`` (uint8: 0 no product,
``i`` the i-th product of the report) and ``<cube>_report.json``
(products, acquisition times, shares of the grid covered, clear and used,
the bands dropped, timings).
"""
import json
import math
import os
import os.path as osp
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import rasterio
from affine import Affine
from mmengine.logging import MMLogger
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from h2crop.constants import ENMAP_DTYPE, ENMAP_REFLECTANCE_SCALE
from h2crop.geo.cog import (
    AverageOverviews,
    bounded_gdal_cache,
    check_output,
    temp_path,
    write_cog,
)
from h2crop.geo.footprint import coverage, footprint, target_description
from h2crop.geo.grid import RasterGrid, crs_name, enmap_grid, same_crs

from .enmap import (
    CUBE_NODATA,
    DEFAULT_MASKS,
    DEFAULT_TOLERANCE_NM,
    BandSelection,
    EnmapProduct,
    EnmapProductError,
    ProductBlockReader,
    check_masks,
    find_enmap_products,
    latest_first,
    select_bands,
)

#: Memory budget of one block of rows (MB), all its arrays together.
DEFAULT_BLOCK_MB = 64
#: Source pixels read around a warped block (the bilinear kernel's reach
#: plus rounding), so that blocks join without seams.
WINDOW_MARGIN = 3
#: Uint8 value of the source map where no product has a clear pixel.
NO_SOURCE = 0
#: Arrays of K bands that a block holds at once, in float32 units (float
#: value, warp source and target, int16 output, overview sums and counts).
_ARRAYS_PER_BLOCK = 6


def report_path(out_path: str) -> str:
    """``<cube>_report.json`` beside the cube."""
    return osp.splitext(out_path)[0] + '_report.json'


def source_path(out_path: str) -> str:
    """``<cube>_source.tif``: which product each pixel comes from."""
    return osp.splitext(out_path)[0] + '_source.tif'


def aligned_offset(target: RasterGrid,
                   grid: RasterGrid) -> Optional[Tuple[int, int]]:
    """``(col, row)`` of the target's origin in ``grid``'s pixels.

    Returns:
        The whole-pixel offset when both grids share CRS, pixel size and
        pixel edges (no resampling needed); else None.
    """
    a, b = target.transform, grid.transform
    if not same_crs(target.crs, grid.crs):
        return None
    if a.b or a.d or b.b or b.d:
        return None
    if not (math.isclose(a.a, b.a, rel_tol=1e-9)
            and math.isclose(a.e, b.e, rel_tol=1e-9)):
        return None
    dx = (a.c - b.c) / b.a
    dy = (a.f - b.f) / b.e
    if abs(dx - round(dx)) > 1e-6 or abs(dy - round(dy)) > 1e-6:
        return None
    return int(round(dx)), int(round(dy))


def block_rows(width: int, bands: int, max_block_mb: float) -> int:
    """Rows per block so that a block's arrays fit ``max_block_mb``."""
    per_row = width * (bands + 1) * 4 * _ARRAYS_PER_BLOCK
    return max(1, int(max_block_mb * 2**20 // max(per_row, 1)))


def to_int16(value: np.ndarray) -> np.ndarray:
    """Reflectance x 10^4 (float, no NaN) -> int16, rounded and clipped.

    The int16 minimum stays reserved for no-data.
    """
    info = np.iinfo(ENMAP_DTYPE)
    return np.clip(np.rint(value), info.min + 1, info.max).astype(
        ENMAP_DTYPE)


@dataclass
class _Job:
    """One product while the cube is built."""

    product: EnmapProduct
    selection: BandSelection
    reader: ProductBlockReader
    offset: Optional[Tuple[int, int]]
    bounds: Tuple[float, float, float, float]
    coverage_share: float
    data_px: int = 0
    clear_px: int = 0
    used_px: int = 0
    source_data_px: int = 0
    band_nodata: np.ndarray = field(default=None)


class EnmapCubeBuilder:
    """Builds the cube block by block (see the module docstring).

    Args:
        products: The products (any order; latest acquisition wins).
        s2_grid: The Sentinel-2 10 m grid; the cube lies on its
            :func:`~h2crop.geo.grid.enmap_grid`.
        masks: ``--mask`` names.
        reference: Cube wavelengths (nm); default the dataset's 218.
        tolerance: Wavelength tolerance (nm) of the band matching.
        max_block_mb: Memory budget of a block of rows (MB).
        s2_path: The file that defined ``s2_grid``, for messages.
    """

    def __init__(self, products: Sequence[EnmapProduct],
                 s2_grid: RasterGrid,
                 masks: Sequence[str] = DEFAULT_MASKS,
                 reference: Optional[Sequence[float]] = None,
                 tolerance: float = DEFAULT_TOLERANCE_NM,
                 max_block_mb: float = DEFAULT_BLOCK_MB,
                 s2_path: str = '') -> None:
        if not products:
            raise EnmapProductError('no EnMAP product given')
        if max_block_mb <= 0:
            raise ValueError(f'--block-mb {max_block_mb} must be > 0')
        if s2_grid.crs is None:
            raise ValueError(f'{s2_path or "the S2 grid"}: no CRS; the cube '
                             'needs a georeferenced S2 grid')
        self.s2_grid = s2_grid
        self.s2_path = s2_path
        self.grid = enmap_grid(s2_grid)
        self.masks = check_masks(masks)
        self.tolerance = float(tolerance)
        self.max_block_mb = float(max_block_mb)
        self.products = latest_first(products)
        self.selections = [select_bands(p.wavelengths, reference,
                                        self.tolerance, p.metadata_path)
                           for p in self.products]
        self.reference = self.selections[0].reference
        self.coverages = [coverage(self.grid, p.grid, p.name,
                                   p.spectral_path) for p in self.products]
        if not any(c.share > 0 for c in self.coverages):
            raise EnmapProductError(
                'no EnMAP product overlaps the S2 grid '
                f'{target_description(s2_grid, s2_path)}: ' +
                '; '.join(c.describe() for c in self.coverages))
        self.logger = MMLogger.get_current_instance()

    @property
    def bands(self) -> int:
        """Number of cube bands."""
        return len(self.reference)

    # ------------------------------------------------------------ blocks
    def _window(self, job: _Job, r0: int, r1: int
                ) -> Optional[Tuple[Window, Tuple[int, int]]]:
        """Source window of target rows ``r0..r1`` of an aligned product.

        Returns:
            The window and where it lands in the block, ``(row, col)``;
            None when the product misses these rows.
        """
        grid = job.product.grid
        dx, dy = job.offset
        top, bottom = max(r0 + dy, 0), min(r1 + dy, grid.height)
        left, right = max(dx, 0), min(self.grid.width + dx, grid.width)
        if top >= bottom or left >= right:
            return None
        win = Window(left, top, right - left, bottom - top)
        return win, (top - dy - r0, left - dx)

    def _warp_window(self, job: _Job, r0: int, r1: int) -> Optional[Window]:
        """Source window covering target rows ``r0..r1`` plus a margin."""
        grid = job.product.grid
        transform = self.grid.transform @ Affine.translation(0, r0)
        block = RasterGrid(self.grid.crs, transform, self.grid.width,
                           r1 - r0)
        left, bottom, right, top = transform_bounds(
            self.grid.crs, grid.crs, *block.bounds(), densify_pts=21)
        inv = ~grid.transform
        cols, rows = zip(*(inv @ (x, y) for x, y in
                           ((left, top), (right, top), (left, bottom),
                            (right, bottom))))
        c0 = max(int(math.floor(min(cols))) - WINDOW_MARGIN, 0)
        c1 = min(int(math.ceil(max(cols))) + WINDOW_MARGIN, grid.width)
        w0 = max(int(math.floor(min(rows))) - WINDOW_MARGIN, 0)
        w1 = min(int(math.ceil(max(rows))) + WINDOW_MARGIN, grid.height)
        if c0 >= c1 or w0 >= w1:
            return None
        return Window(c0, w0, c1 - c0, w1 - w0)

    def product_block(self, job: _Job, r0: int, r1: int
                      ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """A product's values and data mask on target rows ``r0..r1``.

        Returns:
            ``(value, data)``: float32 (K, R, W) reflectance x 10^4, NaN
            where not clear, and bool (R, W) where the product has data; or
            None when the product does not reach these rows.
        """
        k, rows, width = self.bands, r1 - r0, self.grid.width
        if job.offset is not None:
            hit = self._window(job, r0, r1)
            if hit is None:
                return None
            win, (row, col) = hit
            part = job.reader.read(win)
            self._count(job, part)
            value = np.full((k, rows, width), np.nan, dtype=np.float32)
            data = np.zeros((rows, width), dtype=bool)
            h, w = part['data'].shape
            value[:, row:row + h, col:col + w] = part['value']
            data[row:row + h, col:col + w] = part['data']
            return value, data
        win = self._warp_window(job, r0, r1)
        if win is None:
            return None
        part = job.reader.read(win)
        self._count(job, part)
        grid = job.product.grid
        warp = dict(src_transform=grid.transform @ Affine.translation(
                        win.col_off, win.row_off),
                    src_crs=grid.crs,
                    dst_transform=self.grid.transform @ Affine.translation(
                        0, r0),
                    dst_crs=self.grid.crs,
                    # exact coordinates: blocks join without seams
                    tolerance=0)
        # bilinear over the clear source pixels around a target pixel; a
        # target pixel whose own source pixel is masked stays NaN (GDAL's
        # rule when all bands share their no-data pixels)
        value = np.full((k, rows, width), np.nan, dtype=np.float32)
        reproject(part['value'], value, src_nodata=np.nan,
                  dst_nodata=np.nan, resampling=Resampling.bilinear, **warp)
        data = np.zeros((1, rows, width), dtype=np.uint8)
        reproject(part['data'][None].astype(np.uint8), data,
                  resampling=Resampling.nearest, **warp)
        return value, data[0] > 0

    @staticmethod
    def _count(job: _Job, part: Dict[str, np.ndarray]) -> None:
        job.source_data_px += int(part['data'].sum())
        job.band_nodata += part['band_nodata']

    # ------------------------------------------------------------ output
    def _profile(self, count: int, dtype: str, nodata) -> dict:
        grid = self.grid
        return dict(driver='GTiff', width=grid.width, height=grid.height,
                    count=count, dtype=dtype, crs=grid.crs,
                    transform=grid.transform, nodata=nodata,
                    compress='deflate', zlevel=1, predictor=2,
                    # band-interleaved strips: the COG copy reads them band
                    # by band (pixel-interleaved strips made it ~25x slower)
                    tiled=False, interleave='band',
                    photometric='MINISBLACK')

    def _describe(self, dst, jobs: Sequence[_Job]) -> None:
        latest = jobs[0]
        fwhm = latest.product.fwhm[latest.selection.indices]
        dst.descriptions = tuple(f'{w:.1f} nm' for w in self.reference)
        dst.update_tags(
            sensor='EnMAP', products=json.dumps(
                [j.product.name for j in jobs]),
            acquisition_times=json.dumps(
                [j.product.start_time.isoformat() for j in jobs]),
            mosaic='latest clear observation first',
            masks=','.join(self.masks), reflectance_scale=str(
                ENMAP_REFLECTANCE_SCALE), wavelength_units='nm',
            nodata_meaning='masked (clouds, haze, ...) or no product',
            wavelengths=json.dumps([round(float(w), 2)
                                    for w in self.reference]))
        for band, (w, f) in enumerate(zip(self.reference, fwhm), start=1):
            dst.update_tags(band, wavelength=f'{w:.2f}', fwhm=f'{f:.2f}')
            dst.update_tags(band, ns='IMAGERY',
                            CENTRAL_WAVELENGTH_UM=f'{w / 1000:.5f}',
                            FWHM_UM=f'{f / 1000:.5f}')

    def build(self, out_path: str, overwrite: bool = False,
              progress: bool = False) -> Dict:
        """Write the cube, its source map and report (see the module).

        Args:
            out_path: The cube (a COG).
            overwrite: Replace existing outputs.
            progress: Draw a progress bar over the blocks.

        Returns:
            The report written to ``<cube>_report.json``.

        Raises:
            FileExistsError: When an output exists and not ``overwrite``.
            EnmapProductError: For unreadable product files or a cube band
                that is no-data wherever a product has data.
        """
        outputs = (out_path, source_path(out_path), report_path(out_path))
        for path in outputs:
            check_output(path, overwrite)
        start = time.perf_counter()
        with bounded_gdal_cache():
            report = self._build(out_path, progress)
        report['seconds'] = round(time.perf_counter() - start, 3)
        report['rows_per_second'] = round(
            self.grid.height / report['seconds'], 3) \
            if report['seconds'] > 0 else None
        with open(report_path(out_path), 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=1)
        return report

    def _jobs(self) -> List[_Job]:
        jobs = []
        for product, sel, cov in zip(self.products, self.selections,
                                     self.coverages):
            if cov.share <= 0:
                self.logger.warning(f'EnMAP {cov.describe()} of the cube '
                                    'grid: skipped')
                continue
            offset = aligned_offset(self.grid, product.grid)
            if not same_crs(product.grid.crs, self.grid.crs):
                self.logger.warning(
                    f'EnMAP {product.name} is in '
                    f'{crs_name(product.grid.crs)}, the S2 grid in '
                    f'{crs_name(self.grid.crs)}: reprojected (bilinear, '
                    'masked pixels left out)')
            elif offset is None:
                self.logger.warning(
                    f'EnMAP {product.name} is not on the 30 m grid aligned '
                    'to the S2 grid (other origin or pixel size): '
                    'resampled (bilinear, masked pixels left out)')
            bounds = tuple(footprint(product.grid, self.grid.crs).bounds)
            jobs.append(_Job(
                product=product, selection=sel,
                reader=ProductBlockReader(product, sel, self.masks),
                offset=offset, bounds=bounds, coverage_share=cov.share,
                band_nodata=np.zeros(self.bands, dtype=np.int64)))
        return jobs

    def _build(self, out_path: str, progress: bool) -> Dict:
        grid, k = self.grid, self.bands
        jobs = self._jobs()
        if len(jobs) > np.iinfo(np.uint8).max:
            raise ValueError(f'{len(jobs)} overlapping products; at most '
                             '255 fit the uint8 source map')
        rows = min(block_rows(grid.width, k, self.max_block_mb),
                   grid.height)
        starts = list(range(0, grid.height, rows))
        tmp = temp_path(out_path, 'cube')
        tmp_src = temp_path(source_path(out_path), 'cube')
        bar = None
        if progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(starts))
        overviews = AverageOverviews(out_path, grid, k, ENMAP_DTYPE,
                                     CUBE_NODATA)
        try:
            for job in jobs:
                job.reader.__enter__()
            with rasterio.open(tmp, 'w', **self._profile(
                    k, ENMAP_DTYPE, CUBE_NODATA)) as dst, \
                    rasterio.open(tmp_src, 'w', **self._profile(
                        1, 'uint8', None)) as src_dst:
                self._describe(dst, jobs)
                src_dst.descriptions = ('source product (0: none)', )
                src_dst.update_tags(products=json.dumps(
                    [j.product.name for j in jobs]))
                for r0 in starts:
                    r1 = min(r0 + rows, grid.height)
                    out, source = self._mosaic_block(jobs, r0, r1)
                    win = Window(0, r0, grid.width, r1 - r0)
                    dst.write(out, window=win)
                    overviews.push(out)
                    src_dst.write(source[None], window=win)
                    if bar is not None:
                        bar.update()
            self._check_bands(jobs)
            write_cog(tmp, out_path, resampling='average', predictor=True,
                      overviews=overviews.close())
            write_cog(tmp_src, source_path(out_path))
        finally:
            overviews.remove()
            for job in jobs:
                job.reader.__exit__(None, None, None)
            for path in (tmp, tmp_src):
                if osp.exists(path):
                    os.remove(path)
        total = grid.width * grid.height
        covered = sum(j.used_px for j in jobs)
        self.logger.info(f'EnMAP cube {out_path}: {k} bands, {grid.width} x '
                         f'{grid.height} px, {covered / total:.1%} covered '
                         f'by {len(jobs)} product(s)')
        return self._report(out_path, jobs, rows, covered / total)

    def _mosaic_block(self, jobs: Sequence[_Job], r0: int, r1: int
                      ) -> Tuple[np.ndarray, np.ndarray]:
        """Int16 (K, R, W) cube rows and uint8 (R, W) source of a block."""
        grid, k = self.grid, self.bands
        rows = r1 - r0
        out = np.full((k, rows, grid.width), CUBE_NODATA, dtype=ENMAP_DTYPE)
        source = np.full((rows, grid.width), NO_SOURCE, dtype=np.uint8)
        filled = np.zeros((rows, grid.width), dtype=bool)
        top = grid.transform.f + r0 * grid.transform.e
        bottom = grid.transform.f + r1 * grid.transform.e
        lo, hi = min(top, bottom), max(top, bottom)
        for n, job in enumerate(jobs, start=1):
            if job.bounds[1] >= hi or job.bounds[3] <= lo:
                continue  # the footprint misses these rows
            got = self.product_block(job, r0, r1)
            if got is None:
                continue
            value, data = got
            clear = ~np.isnan(value).any(0)
            take = clear & ~filled
            out[:, take] = to_int16(value[:, take])
            source[take] = n
            filled |= take
            job.data_px += int(data.sum())
            job.clear_px += int((clear & data).sum())
            job.used_px += int(take.sum())
        return out, source

    def _check_bands(self, jobs: Sequence[_Job]) -> None:
        """Refuse a product whose cube band is no-data wherever it has data.

        Such a product's bad bands are not the ones the cube drops.
        """
        for job in jobs:
            if job.source_data_px == 0:
                continue
            share = job.band_nodata / job.source_data_px
            worst = int(np.argmax(share))
            wav = job.selection.wavelengths[worst]
            where = (f'{job.product.spectral_path}: band '
                     f'{job.selection.indices[worst] + 1} ({wav:.1f} nm, '
                     f'cube band {worst + 1})')
            if share[worst] >= 1.0:
                raise EnmapProductError(
                    f'{where} is no-data in every pixel with data: the '
                    'product\'s bad bands are not the ones the cube drops '
                    '(bands do not match; --bands-like for another band '
                    'set)')
            if share[worst] > 0.01:
                self.logger.warning(f'{where} is no-data in '
                                    f'{share[worst]:.1%} of the pixels with '
                                    'data; those pixels are left out')

    def _report(self, out_path: str, jobs: Sequence[_Job], rows: int,
                covered: float) -> Dict:
        grid, total = self.grid, self.grid.width * self.grid.height
        skipped = [c.name for c in self.coverages if c.share <= 0]
        return dict(
            cube=out_path, source_map=source_path(out_path),
            s2_grid=self.s2_path or None,
            crs=grid.crs.to_string(),
            transform=list(tuple(grid.transform)[:6]),
            width=grid.width, height=grid.height, bands=self.bands,
            wavelengths=[round(float(w), 2) for w in self.reference],
            reflectance_scale=ENMAP_REFLECTANCE_SCALE, nodata=CUBE_NODATA,
            masks=list(self.masks), wavelength_tolerance_nm=self.tolerance,
            covered_share=round(covered, 6),
            products=[dict(
                source_value=n, name=j.product.name,
                folder=j.product.folder,
                acquisition_start=j.product.start_time.isoformat(),
                crs=crs_name(j.product.grid.crs),
                resampled=j.offset is None,
                footprint_share=round(j.coverage_share, 6),
                data_share=round(j.data_px / total, 6),
                clear_share=round(j.clear_px / j.data_px, 6)
                if j.data_px else None,
                used_share=round(j.used_px / total, 6),
                bands_dropped=[int(i) + 1 for i in j.selection.dropped],
                worst_wavelength_offset_nm=round(
                    j.selection.worst_offset, 3))
                for n, j in enumerate(jobs, start=1)],
            products_without_overlap=skipped,
            block_rows=rows)


def build_enmap_cube(products: Sequence[Union[EnmapProduct, str]],
                     s2_grid: RasterGrid,
                     out_path: str,
                     masks: Sequence[str] = DEFAULT_MASKS,
                     reference: Optional[Sequence[float]] = None,
                     tolerance: float = DEFAULT_TOLERANCE_NM,
                     overwrite: bool = False,
                     progress: bool = False,
                     max_block_mb: float = DEFAULT_BLOCK_MB,
                     s2_path: str = '') -> Dict:
    """Build the 218-band EnMAP cube of an S2 grid from L2A products.

    Args:
        products: :class:`~h2crop.products.enmap.EnmapProduct` objects or
            paths (product folders, folders of products, METADATA.XML).
        s2_grid: The S2 10 m grid (e.g. ``read_grid('s2_m01.tif')``).
        out_path: The cube COG; ``<cube>_source.tif`` and
            ``<cube>_report.json`` are written beside it.
        masks: Quality masks applied (names of
            :data:`~h2crop.products.enmap.MASKS`).
        reference: Cube wavelengths (nm); default the dataset's 218.
        tolerance: Wavelength tolerance (nm) of the band matching.
        overwrite: Replace existing outputs.
        progress: Draw a progress bar.
        max_block_mb: Memory budget of one block of rows (MB).
        s2_path: The file that defined ``s2_grid``, for messages.

    Returns:
        The report (also written as JSON).
    """
    if any(isinstance(p, str) for p in products):
        paths = [p for p in products if isinstance(p, str)]
        found = find_enmap_products(paths)
        products = [p for p in products if not isinstance(p, str)] + found
    builder = EnmapCubeBuilder(products, s2_grid, masks, reference,
                               tolerance, max_block_mb, s2_path)
    return builder.build(out_path, overwrite=overwrite, progress=progress)
