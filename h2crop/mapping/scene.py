"""Streaming inference over georeferenced scenes.

A scene is given as Sentinel-2 monthly composites on one 10 m grid (one
10-band file per month from January, or one file of T x 10 bands), and
optionally an EnMAP raster (read on the S2-aligned 30 m grid, resampled on
the fly when it lies elsewhere) and a 4-band prior raster (last year's
levels, on the S2 grid).

Before any pixel is computed the reader checks that the S2 grid has the
pixel size the models are trained on (:data:`~h2crop.constants.S2_GSD`;
another size is refused, or resampled onto a 10 m grid with
``resample_s2``) and intersects the footprints of S2, EnMAP and prior: no
overlap is an error naming the files and their bounds in the S2 CRS; a
partial one is logged (share of the map each input covers), written into
the map's metadata (``input_coverage``) and refused with
``require_full_overlap``.

The scene is mapped in row strips one window tall: each strip is read, cut
into windows along the columns (batched for the device), the windows'
probabilities are blended into a rolling accumulator one window tall, and
the rows no later strip touches are decoded and written. Memory therefore
grows with the scene width times the window height, never with its area.

The output is a Cloud-Optimised GeoTIFF on the S2 grid with bands
``level1..levelL`` (class ids), ``level1_confidence..`` (percent) and
``deepest_confident_level``; 255 is nodata wherever an input is missing.
"""
import contextlib
import csv
import json
import math
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import rasterio
import torch
from mmengine.logging import MMLogger
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from h2crop.constants import (
    ENMAP,
    ENMAP_BANDS,
    ENMAP_GSD,
    ENMAP_SCALE,
    LEVELS,
    NUM_LEVELS,
    PRIOR,
    S2,
    S2_BANDS,
    S2_GSD,
)
from h2crop.geo.cog import (
    COG_BLOCK,
    bounded_gdal_cache,
    check_output,
    temp_path,
    write_cog,
)
from h2crop.geo.footprint import coverage, joint_share, target_description
from h2crop.geo.grid import (
    RasterGrid,
    crs_name,
    enmap_grid,
    grid_with_pixel,
    open_on_grid,
    read_grid,
    utm_crs,
)
from h2crop.models.segmentors.slide import (
    pad_to,
    slide_accumulate,
    window_starts,
)
from h2crop.visualization.legend import class_table, level_palette

from .geotiff import confidence_percent, model_tags
from .styles import level_vrt_path, write_level_vrts

#: Value of every output band where the inputs are missing.
NODATA = 255
#: Columns of the classes CSV written beside a map.
CLASS_CSV_COLUMNS = ('band', 'level', 'id', 'name', 'red', 'green', 'blue',
                     'taxonomy_digest')
#: Name of the last output band.
DEEPEST_BAND = 'deepest_confident_level'
#: Relative tolerance of the S2 pixel size check.
GSD_RTOL = 1e-3
#: Share of the map above which the inputs count as covering all of it
#: (reprojected outlines leave slivers of rounding).
FULL_COVERAGE = 1 - 1e-4
#: Map metadata tag of the shares of the map the inputs cover.
COVERAGE_TAG = 'input_coverage'


class SceneError(ValueError):
    """Scene inputs that cannot be mapped; the message names the file."""


def output_band_names(levels: Sequence[str]) -> List[str]:
    """Names of the output bands for the predicted ``levels``."""
    return (list(levels) + [f'{lv}_confidence' for lv in levels] +
            [DEEPEST_BAND])


def row_strips(height: int, crop: int, stride: int) -> List[int]:
    """Start rows of the strips covering a scene of ``height`` rows.

    The scene is padded to at least one window and to a multiple of
    :data:`ENMAP_SCALE`; strips are that padded height's window starts.
    """
    padded = height + pad_to(height, crop, ENMAP_SCALE)
    return window_starts(padded, crop, stride)


def split_strips(starts: Sequence[int], rank: int,
                 world_size: int) -> Tuple[int, int]:
    """Strip indices ``[first, last)`` whose rows rank ``rank`` writes.

    Strips are dealt in contiguous, nearly equal blocks so that every rank
    writes a band of whole rows; blocks of different ranks never overlap
    and together cover all strips.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f'rank {rank} outside 0..{world_size - 1}')
    count = len(starts)
    first = count * rank // world_size
    last = count * (rank + 1) // world_size
    return first, last


@dataclass
class SceneInputs:
    """Files of one scene.

    Args:
        s2: One 10-band file per month (January first) or one file of
            T x 10 bands (month-major: the 10 bands of January, then
            February, ...).
        enmap: EnMAP raster of 218 bands, or more with ``enmap_bands``.
        prior: Raster of the 4 levels of last year's map.
        enmap_bands: 1-based band numbers of the 218 bands to use.
        resample_s2: Resample S2 composites whose pixel size is not the
            models' 10 m onto a 10 m grid (else they are refused).
        require_full_overlap: Refuse inputs that do not cover the whole S2
            grid (else the uncovered part is nodata, and reported).
    """

    s2: Sequence[str]
    enmap: Optional[str] = None
    prior: Optional[str] = None
    enmap_bands: Optional[Sequence[int]] = field(default=None)
    resample_s2: bool = False
    require_full_overlap: bool = False


class SceneReader:
    """Reads aligned strips of every input of a scene.

    Use as a context manager; :meth:`read_strip` returns raw float32 arrays
    and a validity mask.

    Args:
        inputs: The scene's files.
        num_frames: Months the model uses (January onwards).
        modalities: The model's modalities.
        levels: The model's levels (rows of the prior used).
    """

    def __init__(self, inputs: SceneInputs, num_frames: int,
                 modalities: Sequence[str],
                 levels: Sequence[str] = LEVELS) -> None:
        self.inputs = inputs
        self.num_frames = int(num_frames)
        self.modalities = tuple(modalities)
        self.levels = tuple(levels)
        self._stack = contextlib.ExitStack()
        self.grid: Optional[RasterGrid] = None
        #: Share of the map each input (and ``'all'`` of them) covers.
        self.coverage: Dict[str, float] = {}
        #: Metadata tags the map carries about its inputs.
        self.tags: Dict[str, str] = {}

    # ------------------------------------------------------------ opening
    def __enter__(self) -> 'SceneReader':
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _open(self) -> None:
        paths = list(self.inputs.s2)
        if not paths:
            raise SceneError('no S2 file given')
        self.s2 = [self._stack.enter_context(rasterio.open(p))
                   for p in paths]
        self.grid = RasterGrid.from_dataset(self.s2[0])
        for path, ds in zip(paths[1:], self.s2[1:]):
            diffs = self.grid.differences(RasterGrid.from_dataset(ds))
            if diffs:
                raise SceneError(f'{path}: S2 file is not on the grid of '
                                 f'{paths[0]}: {"; ".join(diffs)}')
        self._check_s2_pixel(paths)
        self._check_overlap()
        # (file index, band number) per month and band
        if len(paths) == 1:
            count = self.s2[0].count
            if count % S2_BANDS or count // S2_BANDS < self.num_frames:
                raise SceneError(
                    f'{paths[0]}: {count} bands; a single S2 file must hold '
                    f'T x {S2_BANDS} bands with T >= {self.num_frames} (the '
                    'months the model uses), or give one file per month')
            self.s2_bands = [(0, b + 1) for b in
                             range(self.num_frames * S2_BANDS)]
        else:
            if len(paths) != self.num_frames:
                raise SceneError(
                    f'{len(paths)} S2 files given; the model uses '
                    f'{self.num_frames} months (January onwards): give one '
                    'file per month')
            for path, ds in zip(paths, self.s2):
                if ds.count != S2_BANDS:
                    raise SceneError(f'{path}: {ds.count} bands; a monthly '
                                     f'S2 file must have {S2_BANDS}')
            self.s2_bands = [(f, b + 1) for f in range(len(paths))
                             for b in range(S2_BANDS)]

        self.enmap = None
        self._check_given(ENMAP, self.inputs.enmap, 'EnMAP', '--enmap')
        if self.inputs.enmap is not None:
            self.enmap_grid = enmap_grid(self.grid)
            self.enmap = self._stack.enter_context(open_on_grid(
                self.inputs.enmap, self.enmap_grid, Resampling.bilinear,
                'EnMAP'))
            bands = self.inputs.enmap_bands
            if bands is None:
                if self.enmap.count != ENMAP_BANDS:
                    raise SceneError(
                        f'{self.inputs.enmap}: {self.enmap.count} bands; '
                        f'expected {ENMAP_BANDS} or select them with '
                        '--enmap-bands')
                bands = range(1, ENMAP_BANDS + 1)
            bands = [int(b) for b in bands]
            if len(bands) != ENMAP_BANDS or not all(
                    1 <= b <= self.enmap.count for b in bands):
                raise SceneError(
                    f'{self.inputs.enmap}: --enmap-bands must select '
                    f'{ENMAP_BANDS} bands among 1..{self.enmap.count}, got '
                    f'{len(bands)}')
            self.enmap_bands = bands

        self.prior = None
        self._check_given(PRIOR, self.inputs.prior, 'the prior', '--prior')
        if self.inputs.prior is not None:
            self.prior = self._stack.enter_context(open_on_grid(
                self.inputs.prior, self.grid, Resampling.nearest, 'prior'))
            if self.prior.count != NUM_LEVELS:
                raise SceneError(f'{self.inputs.prior}: {self.prior.count} '
                                 f'bands; expected {NUM_LEVELS} (levels 1..'
                                 f'{NUM_LEVELS})')
            self.prior_bands = [LEVELS.index(lv) + 1 for lv in self.levels]

    def _check_s2_pixel(self, paths: Sequence[str]) -> None:
        """Refuse (or resample) S2 whose pixel is not the models' 10 m."""
        size = self.grid.pixel_size_m()
        if size is not None and all(math.isclose(s, S2_GSD, rel_tol=GSD_RTOL)
                                    for s in size):
            return
        a, e = (abs(v) for v in self.grid.pixel_size)
        found = (f'{size[0]:g} m x {size[1]:g} m' if size is not None else
                 f'{a:g} x {e:g} in {crs_name(self.grid.crs)} (not a '
                 'projected CRS in metres)')
        if not self.inputs.resample_s2:
            raise SceneError(
                f'{paths[0]}: S2 pixel size {found}; the models are trained '
                f'on {S2_GSD:g} m S2 pixels (and {ENMAP_GSD:g} m EnMAP): '
                f'resample the composites to {S2_GSD:g} m (e.g. gdalwarp -tr '
                f'{S2_GSD:g} {S2_GSD:g} -r bilinear), or pass --resample-s2 '
                'to resample them on the fly')
        crs = None if size is not None else utm_crs(self.grid)
        target = grid_with_pixel(self.grid, S2_GSD, crs)
        MMLogger.get_current_instance().warning(
            f'--resample-s2: the S2 composites ({len(paths)} file(s), pixel '
            f'size {found}) are resampled on the fly onto a {S2_GSD:g} m '
            f'grid in {crs_name(target.crs)} ({target.width} x '
            f'{target.height} px, bilinear); the map is on that grid, its '
            'detail no finer than the composites\'')
        self.s2 = [self._stack.enter_context(open_on_grid(
            p, target, Resampling.bilinear, 'S2', warn=False)) for p in paths]
        self.grid = target
        self.tags['s2_resampled_from'] = found

    def _check_overlap(self) -> None:
        """Intersect the footprints of S2, EnMAP and prior (no pixel read).

        Raises:
            SceneError: When an input misses the S2 grid (or the inputs miss
                each other), naming the files and their bounds in the S2
                CRS; with ``require_full_overlap`` also on partial overlap.
        """
        named = [(name, path) for name, path in (
            ('EnMAP', self.inputs.enmap), ('prior', self.inputs.prior))
            if path is not None]
        try:
            grids = [read_grid(path) for _, path in named]
        except RasterioIOError as err:
            raise SceneError(f'cannot open an input raster: {err}') from err
        covs = [coverage(self.grid, grid, name, path)
                for (name, path), grid in zip(named, grids)]
        joint = joint_share(self.grid, grids)
        self.coverage = {c.name: c.share for c in covs}
        self.coverage['all'] = joint
        self.tags[COVERAGE_TAG] = json.dumps(
            {k: round(v, 6) for k, v in self.coverage.items()})
        if joint >= FULL_COVERAGE:
            return
        inputs = '; '.join(c.describe() for c in covs)
        where = (f'of S2 {target_description(self.grid, self.inputs.s2[0])}'
                 f', bounds in {crs_name(self.grid.crs)}')
        if joint == 0:
            off = [c.name for c in covs if c.share == 0]
            apart = (f'{" and ".join(off)} do{"es" if len(off) == 1 else ""}'
                     ' not overlap S2' if off else
                     f'{" and ".join(c.name for c in covs)} overlap S2 but '
                     'not each other')
            raise SceneError(f'no pixel can be mapped: {apart}: {inputs} '
                             f'{where}')
        message = (f'the inputs cover {joint:.1%} of the map: {inputs} '
                   f'{where}; the rest of the map is nodata ({NODATA})')
        if self.inputs.require_full_overlap:
            raise SceneError(message + ' (--require-full-overlap)')
        MMLogger.get_current_instance().warning(message)

    # ------------------------------------------------------------ reading
    def _check_given(self, modality: str, path: Optional[str], what: str,
                     flag: str) -> None:
        """Refuse an input the model lacks, or a missing one it uses."""
        if (modality in self.modalities) == (path is not None):
            return
        if path is None:
            raise SceneError(f'the model uses {what}: give {flag}')
        raise SceneError(f'the model was built without {what}; leave {flag} '
                         'out')

    def read_strip(self, row: int, rows: int, width: int
                   ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
        """Read ``rows`` rows from ``row`` on, padded to ``width`` columns.

        Rows and columns outside the scene are padding (invalid).

        Returns:
            Raw arrays ``s2`` float32 (1, T, 10, rows, width), ``enmap``
            float32 (1, 218, rows/3, width/3), ``prior`` int64
            (1, L, rows, width) for the inputs used, and validity masks
            (False on padding and nodata): per input on its own grid, and
            under ``'all'`` bool (rows, width), False where any input is
            missing.
        """
        grid = self.grid
        inside = max(0, min(rows, grid.height - row))
        valid = np.zeros((rows, width), dtype=bool)
        masks: Dict[str, np.ndarray] = {}
        out: Dict[str, np.ndarray] = {}
        s2 = np.zeros((self.num_frames * S2_BANDS, rows, width), np.float32)
        if inside:
            win = Window(0, row, grid.width, inside)
            ok = np.ones((inside, grid.width), dtype=bool)
            for f, ds in enumerate(self.s2):
                bands = [b for fi, b in self.s2_bands if fi == f]
                first = self.s2_bands.index((f, bands[0]))
                data = ds.read(bands, window=win)
                ok &= _valid(data, ds.nodata)
                s2[first:first + len(bands), :inside, :grid.width] = data
            valid[:inside, :grid.width] = ok
        masks[S2] = valid.copy()
        # (T * 10, rows, width) -> (1, T, 10, rows, width)
        out[S2] = s2.reshape(1, self.num_frames, S2_BANDS, rows, width)

        if self.enmap is not None:
            scale = ENMAP_SCALE
            crow, crows, cwidth = row // scale, rows // scale, width // scale
            egrid = self.enmap_grid
            einside = max(0, min(crows, egrid.height - crow))
            enmap = np.zeros((ENMAP_BANDS, crows, cwidth), np.float32)
            eok = np.zeros((crows, cwidth), dtype=bool)
            if einside:
                win = Window(0, crow, egrid.width, einside)
                data = self.enmap.read(self.enmap_bands, window=win)
                enmap[:, :einside, :egrid.width] = data
                eok[:einside, :egrid.width] = _valid(data,
                                                     self.enmap.nodata)
            # coarse (rows/3, width/3) -> S2 pixels (rows, width)
            valid &= eok.repeat(scale, 0).repeat(scale, 1)
            masks[ENMAP] = eok
            out[ENMAP] = enmap[None]  # (1, 218, rows/3, width/3)

        if self.prior is not None:
            prior = np.zeros((len(self.levels), rows, width), np.int64)
            pok = np.zeros((rows, width), dtype=bool)
            if inside:
                win = Window(0, row, grid.width, inside)
                data = self.prior.read(self.prior_bands, window=win)
                pok[:inside, :grid.width] = _valid(data, self.prior.nodata)
                prior[:, :inside, :grid.width] = np.where(
                    pok[:inside, :grid.width], data, 0)
            valid &= pok
            masks[PRIOR] = pok
            out[PRIOR] = prior[None]  # (1, L, rows, width)
        masks['all'] = valid
        return out, masks


def _valid(data: np.ndarray, nodata: Optional[float]) -> np.ndarray:
    """Pixels (H, W) where no band of ``data`` (C, H, W) is ``nodata``."""
    if nodata is None:
        return np.ones(data.shape[1:], dtype=bool)
    if np.isnan(nodata):
        return ~np.isnan(data).any(axis=0)
    return ~(data == nodata).any(axis=0)


def _normalised(model: torch.nn.Module, raw: Dict[str, np.ndarray],
                masks: Dict[str, np.ndarray], device: torch.device
                ) -> Dict[str, torch.Tensor]:
    """Model inputs of a strip, with missing values filled.

    Missing values become the band mean (a z-score of 0) or background
    (prior).
    """
    tensors = {k: torch.from_numpy(v) for k, v in raw.items()}
    data = model.data_preprocessor(dict(inputs=tensors, data_samples=None),
                                   False)
    inputs = data['inputs']
    for key, value in inputs.items():
        # mask (h, w) broadcasts over the leading axes of every modality
        invalid = torch.from_numpy(~masks[key]).to(device)
        value.masked_fill_(invalid, 0)
    return inputs


def class_table_rows(model: torch.nn.Module) -> List[List[object]]:
    """Rows of the classes CSV (:data:`CLASS_CSV_COLUMNS`) per class, level.

    The last column is the taxonomy digest, so the CSV states which
    taxonomy the ids belong to.
    """
    rows = []
    digest = model.taxonomy.digest()
    for band, level in enumerate(model.levels, start=1):
        rows += [[band, level] + row + [digest] for row in
                 class_table(model.taxonomy.level_names(level))]
    return rows


def sidecar_csv_path(out_path: str) -> str:
    """Path of the class-name CSV written beside a map."""
    return osp.splitext(out_path)[0] + '_classes.csv'


class SceneMapper:
    """Map a scene with a model, strip by strip.

    Args:
        model: A segmentor from :func:`h2crop.apis.init_model`.
        batch_size: Windows per forward pass; None takes the model's
            ``test_cfg['batch_size']``.
        amp: bfloat16 autocast (CUDA or CPU).
        progress: Draw a progress bar (strips) on the terminal.
    """

    def __init__(self, model: torch.nn.Module,
                 batch_size: Optional[int] = None,
                 amp: bool = False, progress: bool = False) -> None:
        self.model = model
        self.batch_size = int(batch_size if batch_size is not None else
                              model.test_cfg['batch_size'])
        # the band-statistics check watches training batches; scene strips
        # hold padding and nodata before they are masked
        guard = getattr(model.data_preprocessor, 'stats_guard', None)
        if guard is not None:
            guard.done = True
        self.amp = bool(amp)
        self.progress = progress
        self.device = next(model.parameters()).device
        cfg = model.test_cfg
        self.crop = tuple(cfg['crop_size'])
        self.stride = tuple(cfg['stride'])
        self.levels = tuple(model.levels)

    # ------------------------------------------------------------ core
    def _strip_probs(self, inputs: Dict[str, torch.Tensor],
                     acc: Dict[str, torch.Tensor], wsum: torch.Tensor
                     ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
        """Add a strip's weighted window probabilities into the buffers."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.amp):
            return slide_accumulate(self.model._window_probs, inputs,
                                    self.crop, (self.crop[0], self.stride[1]),
                                    self.batch_size, acc=acc, wsum=wsum)

    @torch.no_grad()
    def map_rows(self, reader: SceneReader, first: int, last: int,
                 sink) -> None:
        """Decode and hand to ``sink`` the rows of strips ``first..last``.

        Every strip whose window reaches a written row is computed (also
        those before ``first``), in scene order, so the blended values are
        bit-identical to a pass over the whole scene.

        Args:
            reader: An open :class:`SceneReader`.
            first: Index of the first strip (see :func:`split_strips`);
                the rows written start at strip ``first``'s start.
            last: Strip index (see :func:`split_strips`) ending the rows
                written: they go up to strip ``last``'s start (the scene end
                for the last strip).
            sink: Called as ``sink(row, bands)`` with ``bands`` uint8
                (2L + 1, rows, W) for consecutive row blocks.
        """
        grid = reader.grid
        crop_h = self.crop[0]
        starts = row_strips(grid.height, crop_h, self.stride[0])
        width = grid.width + pad_to(grid.width, self.crop[1], ENMAP_SCALE)
        row_end = starts[last] if last < len(starts) else grid.height
        row_begin = starts[first]
        todo = [i for i, s in enumerate(starts)
                if s < row_end and s + crop_h > row_begin]
        # rolling buffers of the rows row .. row + crop_h of the scene
        acc: Dict[str, torch.Tensor] = {}
        wsum = torch.zeros(crop_h, width, device=self.device)
        bar = None
        if self.progress:
            from mmengine.utils import ProgressBar
            bar = ProgressBar(len(todo))
        for n, i in enumerate(todo):
            row = starts[i]
            raw, masks = reader.read_strip(row, crop_h, width)
            valid = masks['all']
            inputs = _normalised(self.model, raw, masks, self.device)
            acc, wsum = self._strip_probs(inputs, acc, wsum)
            nxt = starts[todo[n + 1]] if n + 1 < len(todo) else row + crop_h
            final = nxt - row  # rows no later strip touches
            lo, hi = max(row, row_begin), min(row + final, row_end,
                                              grid.height)
            if hi > lo:
                part = slice(lo - row, hi - row)
                probs = {lv: acc[lv][:, :, part] / wsum[part]
                         for lv in self.levels}
                sink(lo, self._bands(probs, valid[part], grid.width))
            # move the buffer down by `final` rows, in place
            keep = crop_h - final
            for buf in list(acc.values()) + [wsum]:  # (..., crop_h, width)
                if keep > 0:  # overlapping ranges: copy through a clone
                    buf[..., :keep, :] = buf[..., final:, :].clone()
                buf[..., keep:, :].zero_()
            if bar is not None:
                bar.update()

    def _bands(self, probs: Dict[str, torch.Tensor], valid: np.ndarray,
               width: int) -> np.ndarray:
        """Output bands of finished rows: (2L + 1, rows, W) uint8."""
        dec = self.model.decode_probs(probs)
        pred = dec['pred'][0, :, :, :width].to(torch.uint8)  # (L, rows, W)
        conf = confidence_percent(dec['confidence'][0, :, :, :width])
        deep = dec['deepest'][0, :, :width].unsqueeze(0)  # (1, rows, W)
        bands = torch.cat([pred, conf, deep]).cpu().numpy()
        bands[:, ~valid[:, :width]] = NODATA
        return bands

    # ------------------------------------------------------------ files
    def profile(self, grid: RasterGrid) -> dict:
        """Creation options of the intermediate (striped) GeoTIFF."""
        return dict(driver='GTiff', width=grid.width, height=grid.height,
                    count=2 * len(self.levels) + 1, dtype='uint8',
                    crs=grid.crs, transform=grid.transform, nodata=NODATA,
                    compress='deflate', tiled=False,
                    photometric='MINISBLACK')

    def describe(self, dst, reader: Optional[SceneReader] = None) -> None:
        """Band descriptions and class names / colours as metadata.

        Args:
            dst: The open output raster.
            reader: The scene's reader, whose tags (input coverage, S2
                resampling) the map carries too.
        """
        model = self.model
        dst.descriptions = tuple(output_band_names(self.levels))
        tags = dict(levels=','.join(self.levels),
                    confidence_unit='percent',
                    nodata_meaning='an input is missing', **model_tags(model))
        for level in self.levels:
            names = model.taxonomy.level_names(level)
            tags[f'{level}_class_names'] = json.dumps(list(names))
            tags[f'{level}_colors'] = json.dumps(
                level_palette(len(names)).tolist())
        if reader is not None:
            tags.update(reader.tags)
        dst.update_tags(**tags)
        for band, level in enumerate(self.levels, start=1):
            dst.update_tags(band, level=level, content='class id')
        for band, level in enumerate(self.levels, start=len(self.levels) + 1):
            dst.update_tags(band, level=level, content='confidence percent')

    def map_scene(self, inputs: SceneInputs, out_path: str,
                  overwrite: bool = False) -> Dict[str, object]:
        """Map a whole scene into a COG ``out_path`` (one process)."""
        with bounded_gdal_cache():
            return self._map_scene(inputs, out_path, overwrite)

    def _map_scene(self, inputs: SceneInputs, out_path: str,
                   overwrite: bool) -> Dict[str, object]:
        check_output(out_path, overwrite)
        csv_path = sidecar_csv_path(out_path)
        check_output(csv_path, overwrite)
        for level in self.levels:
            check_output(level_vrt_path(out_path, level), overwrite)
        model = self.model
        with SceneReader(inputs, model.num_frames, model.modalities,
                         self.levels) as reader:
            tmp = temp_path(out_path, 'strips')
            try:
                with rasterio.open(tmp, 'w', **self.profile(reader.grid)
                                   ) as dst:
                    self.describe(dst, reader)
                    starts = row_strips(reader.grid.height, self.crop[0],
                                        self.stride[0])
                    self.map_rows(reader, 0, len(starts),
                                  _window_sink(dst))
                write_cog(tmp, out_path)
            finally:
                if osp.exists(tmp):
                    os.remove(tmp)
            grid = reader.grid
        write_class_csv(model, csv_path)
        vrts = write_level_vrts(
            out_path, model.levels,
            [model.taxonomy.level_names(lv) for lv in model.levels])
        return dict(out=out_path, classes_csv=csv_path, width=grid.width,
                    height=grid.height, level_vrts=vrts,
                    coverage=dict(reader.coverage))


def _window_sink(dst):
    def sink(row: int, bands: np.ndarray) -> None:
        dst.write(bands, window=Window(0, row, bands.shape[2],
                                       bands.shape[1]))
    return sink


def write_class_csv(model: torch.nn.Module, path: str) -> None:
    """Class names and colours of every output band (sidecar CSV)."""
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(CLASS_CSV_COLUMNS)
        writer.writerows(class_table_rows(model))


def iter_blocks(path: str, rows: int = COG_BLOCK
                ) -> Iterator[Tuple[int, np.ndarray]]:
    """Row blocks ``(row, (bands, rows, W))`` of a raster, in order."""
    with rasterio.open(path) as src:
        for row in range(0, src.height, rows):
            n = min(rows, src.height - row)
            yield row, src.read(window=Window(0, row, src.width, n))


def map_scene_distributed(mapper: SceneMapper, inputs: SceneInputs,
                          out_path: str, rank: int, world_size: int,
                          barrier, overwrite: bool = False
                          ) -> Optional[Dict[str, object]]:
    """Map a scene with several processes; the COG equals a 1-process one.

    Every rank maps its block of strips (:func:`split_strips`) into a part
    file; after ``barrier()`` rank 0 stitches the parts in row order into
    the striped GeoTIFF and writes the COG and the CSV.

    Args:
        mapper: The rank's mapper (its model on its device).
        inputs: The scene's files.
        out_path: The COG.
        rank: Index of this process.
        world_size: Number of processes.
        barrier: Callable that waits for every rank
            (``torch.distributed.barrier``).
        overwrite: Replace existing outputs.

    Returns:
        Rank 0: as :meth:`SceneMapper.map_scene`; other ranks: None.
    """
    with bounded_gdal_cache():
        return _map_scene_distributed(mapper, inputs, out_path, rank,
                                      world_size, barrier, overwrite)


def _map_scene_distributed(mapper: SceneMapper, inputs: SceneInputs,
                           out_path: str, rank: int, world_size: int,
                           barrier, overwrite: bool
                           ) -> Optional[Dict[str, object]]:
    csv_path = sidecar_csv_path(out_path)
    check_output(out_path, overwrite)
    check_output(csv_path, overwrite)
    for level in mapper.levels:
        check_output(level_vrt_path(out_path, level), overwrite)
    model = mapper.model
    parts = [temp_path(out_path, f'part{r}of{world_size}', False)
             for r in range(world_size)]
    try:
        with SceneReader(inputs, model.num_frames, model.modalities,
                         mapper.levels) as reader:
            grid = reader.grid
            starts = row_strips(grid.height, mapper.crop[0],
                                mapper.stride[0])
            first, last = split_strips(starts, rank, world_size)
            row0 = starts[first] if first < len(starts) else grid.height
            row1 = starts[last] if last < len(starts) else grid.height
            row1 = min(row1, grid.height)
            if row1 > row0:
                profile = mapper.profile(grid)
                profile.update(height=row1 - row0)
                with rasterio.open(parts[rank], 'w', **profile) as dst:
                    def sink(row: int, bands: np.ndarray) -> None:
                        dst.write(bands, window=Window(
                            0, row - row0, bands.shape[2], bands.shape[1]))
                    mapper.map_rows(reader, first, last, sink)
        barrier()
        if rank != 0:
            return None
        tmp = temp_path(out_path, 'strips')
        try:
            with rasterio.open(tmp, 'w', **mapper.profile(grid)) as dst:
                mapper.describe(dst, reader)
                row = 0
                for part in parts:
                    if not osp.exists(part):
                        continue  # a rank without rows
                    for off, block in iter_blocks(part):
                        dst.write(block, window=Window(
                            0, row + off, block.shape[2], block.shape[1]))
                    with rasterio.open(part) as src:
                        row += src.height
                if row != grid.height:
                    raise RuntimeError(f'parts cover {row} rows of '
                                       f'{grid.height}')
            write_cog(tmp, out_path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)
        write_class_csv(model, csv_path)
        vrts = write_level_vrts(
            out_path, model.levels,
            [model.taxonomy.level_names(lv) for lv in model.levels])
        return dict(out=out_path, classes_csv=csv_path, width=grid.width,
                    height=grid.height, level_vrts=vrts,
                    coverage=dict(reader.coverage))
    finally:
        _cleanup_parts(parts, rank)


def _cleanup_parts(parts: Sequence[str], rank: int) -> None:
    """Rank 0 removes the part files once stitched (or on failure)."""
    if rank == 0:
        for part in parts:
            if osp.exists(part):
                os.remove(part)


def preview_path(out_path: str) -> str:
    """Path of the PNG preview written beside a map."""
    return osp.splitext(out_path)[0] + '_preview.png'


def write_preview(map_path: str, png_path: Optional[str] = None,
                  max_side: int = 1024) -> str:
    """PNG of a map's class bands with legends.

    Class names come from the map's metadata; the bands are decimated to at
    most ``max_side`` pixels (from the overviews, nearest).
    """
    from h2crop.visualization import plot_class_maps
    png_path = png_path or preview_path(map_path)
    with rasterio.open(map_path) as src:
        tags = src.tags()
        levels = tags['levels'].split(',')
        factor = max(1, -(-max(src.width, src.height) // max_side))
        shape = (len(levels), -(-src.height // factor),
                 -(-src.width // factor))
        maps = src.read(list(range(1, len(levels) + 1)), out_shape=shape,
                        resampling=Resampling.nearest)
    names = [json.loads(tags[f'{lv}_class_names']) for lv in levels]
    return plot_class_maps(maps, names, levels, png_path, nodata=NODATA,
                           title=osp.basename(map_path))
