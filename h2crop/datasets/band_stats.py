"""Per-band mean and standard deviation of S2 and EnMAP over a split.

One streaming pass over the tiles of a split list: every tile contributes
its per-band count, mean and sum of squared deviations (float64), and the
partial results are merged with Chan et al.'s pairwise formula, so the
result does not depend on how tiles are split over worker processes and
stays exact for large counts (no ``sum(x**2) - sum(x)**2`` cancellation).

S2 statistics pool every month and pixel of a band; EnMAP every pixel. The
standard deviation is the population one (``ddof=0``), as ``np.std``.
"""
import json
import os.path as osp
from multiprocessing import get_context
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_BANDS,
    H5_DIR,
    H5_SUFFIX,
    NUM_MONTHS,
    S2,
    S2_BANDS,
)

from .h2crop_dataset import read_split_list, resolve_ann_file
from .h5io import H2CropDataError, read_tile

#: Modalities with band statistics: key -> (bands, band axis in a sample).
STAT_MODALITIES: Dict[str, Tuple[int, int]] = {
    S2: (S2_BANDS, 1),  # (T, C, H, W)
    ENMAP: (ENMAP_BANDS, 0),  # (C, h, w)
}


class RunningBandStats:
    """Streaming per-band count, mean and M2 (sum of squared deviations).

    Args:
        num_bands: Number of bands.
    """

    def __init__(self, num_bands: int) -> None:
        self.count = 0
        self.mean = np.zeros(num_bands, dtype=np.float64)
        self.m2 = np.zeros(num_bands, dtype=np.float64)

    def add(self, array: np.ndarray, band_axis: int) -> None:
        """Add every value of ``array``, band by band.

        Args:
            array: Any shape whose ``band_axis`` holds the bands.
            band_axis: Axis of the bands.
        """
        # (..., C, ...) -> (C, N): one row per band
        rows = np.moveaxis(array, band_axis, 0).reshape(array.shape[band_axis],
                                                        -1)
        if rows.shape[0] != self.mean.shape[0]:
            raise ValueError(f'{rows.shape[0]} bands, expected '
                             f'{self.mean.shape[0]}')
        values = rows.astype(np.float64)
        mean = values.mean(axis=1)
        m2 = ((values - mean[:, None])**2).sum(axis=1)
        self.merge_parts(values.shape[1], mean, m2)

    def merge_parts(self, count: int, mean: np.ndarray,
                    m2: np.ndarray) -> None:
        """Merge another partial result (Chan et al.'s pairwise update)."""
        if count == 0:
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    def merge(self, other: 'RunningBandStats') -> None:
        """Merge another accumulator into this one."""
        self.merge_parts(other.count, other.mean, other.m2)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per band."""
        if self.count == 0:
            return np.full_like(self.mean, np.nan)
        return np.sqrt(self.m2 / self.count)


def _tile_stats(args: Tuple[List[str], Tuple[str, ...]]
                ) -> Dict[str, RunningBandStats]:
    """Statistics of a chunk of tiles (runs in a worker process)."""
    paths, modalities = args
    stats = {key: RunningBandStats(STAT_MODALITIES[key][0])
             for key in modalities}
    for path in paths:
        arrays = read_tile(path, modalities, end_month=NUM_MONTHS)
        for key in modalities:
            stats[key].add(arrays[key], STAT_MODALITIES[key][1])
    return stats


def compute_band_stats(data_root: str,
                       split: str = 'train',
                       ann_file: Optional[str] = None,
                       modalities: Sequence[str] = (S2, ENMAP),
                       workers: int = 0,
                       chunk_size: int = 8) -> Dict[str, dict]:
    """Per-band mean / std of a split, in one streaming pass.

    Args:
        data_root: Folder with ``h5_data/`` (and usually ``data_lists/``).
        split: Split name; the list is ``data_lists/<split>.txt`` looked up
            like the dataset does (under ``data_root``, then the working
            directory). Ignored when ``ann_file`` is given.
        ann_file: Explicit split list.
        modalities: Subset of ``('s2', 'enmap')``.
        workers: Worker processes (0: in this process).
        chunk_size: Tiles per work item.

    Returns:
        dict: ``{'num_tiles': n, 'ann_file': path, 's2': {'mean': [...],
        'std': [...], 'count': values per band}, 'enmap': {...}}``.

    Raises:
        H2CropDataError: For an empty or missing split list, a missing tile
            or one with unexpected content (naming file and key).
        ValueError: For unknown modalities.
    """
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in STAT_MODALITIES]
    if unknown or not modalities:
        raise ValueError(f'modalities {modalities}: expected a non-empty '
                         f'subset of {tuple(STAT_MODALITIES)}')
    if ann_file is None:
        ann_file = osp.join(DATA_LISTS_DIR, f'{split}.txt')
    ann_path = resolve_ann_file(ann_file, data_root)
    ids = read_split_list(ann_path)
    if not ids:
        raise H2CropDataError(f'{ann_path}: split list is empty; expected '
                              'one sample id per line')
    paths = [osp.join(data_root, H5_DIR, sid + H5_SUFFIX) for sid in ids]
    chunks = [(paths[i:i + chunk_size], modalities)
              for i in range(0, len(paths), chunk_size)]
    total = {key: RunningBandStats(STAT_MODALITIES[key][0])
             for key in modalities}
    if workers > 0:
        with get_context('spawn').Pool(workers) as pool:
            parts = pool.imap(_tile_stats, chunks)
            for part in parts:
                for key in modalities:
                    total[key].merge(part[key])
    else:
        for chunk in chunks:
            part = _tile_stats(chunk)
            for key in modalities:
                total[key].merge(part[key])
    result: Dict[str, dict] = dict(num_tiles=len(ids), ann_file=ann_path)
    for key in modalities:
        result[key] = dict(mean=total[key].mean.tolist(),
                           std=total[key].std.tolist(),
                           count=int(total[key].count))
    return result


def write_band_stats(stats: Dict[str, dict], out_dir: str,
                     base_config: Optional[str] = None) -> List[str]:
    """Write ``band_stats.json`` and the config snippet ``band_stats.py``.

    The snippet sets the experiment choices ``norm_mean`` / ``norm_std``,
    which reach the model's data preprocessor when the run is built. With
    ``base_config`` it also inherits that config, so it can be trained
    as is (``tools/train.py OUT/band_stats.py``).

    Returns:
        The paths written.
    """
    json_path = osp.join(out_dir, 'band_stats.json')
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(stats, f, indent=1)
    keys = [k for k in STAT_MODALITIES if k in stats]
    lines = [f'# Per-band statistics of {stats["num_tiles"]} tiles listed in',
             f'# {stats["ann_file"]}',
             '# (tools/analysis_tools/compute_band_stats.py).']
    if base_config is not None:
        lines.append(f'_base_ = [{osp.abspath(base_config)!r}]')
    for name, field in (('norm_mean', 'mean'), ('norm_std', 'std')):
        lines.append(f'{name} = dict(')
        for key in keys:
            values = ', '.join(repr(float(v)) for v in stats[key][field])
            lines.append(f'    {key}=[{values}],')
        lines.append(')')
    py_path = osp.join(out_dir, 'band_stats.py')
    with open(py_path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    return [json_path, py_path]
