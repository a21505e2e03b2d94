"""Warn when the configured band statistics do not fit the data.

Z-scoring with statistics of other data (another reflectance scaling, an
offset, another sensor processing) leaves per-band values far from mean 0 /
std 1 and training degrades without an error. :class:`BandStatsGuard`
watches the normalised batches of the first few steps and logs one warning
naming the bands and the command that computes statistics of the data.
"""
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.logging import MMLogger
from torch import Tensor

#: Command that computes statistics of a data root (for the warning).
BAND_STATS_COMMAND = ('python tools/analysis_tools/compute_band_stats.py '
                      'DATA_ROOT --split train')


def _ranges(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2, 5'``."""
    parts: List[str] = []
    start = prev = None
    for i in indices:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f'{start}' if start == prev else f'{start}-{prev}')
            start = prev = i
    if start is not None:
        parts.append(f'{start}' if start == prev else f'{start}-{prev}')
    return ', '.join(parts)


class BandStatsGuard:
    """Accumulate per-band moments of normalised batches; warn once.

    Args:
        num_batches: Batches to watch before judging (0 disables the guard).
        std_range: Accepted range of the per-band std after normalisation.
        max_abs_mean: Largest accepted |per-band mean| after normalisation.
    """

    def __init__(self,
                 num_batches: int = 4,
                 std_range: Tuple[float, float] = (0.2, 5.0),
                 max_abs_mean: float = 3.0) -> None:
        if num_batches < 0:
            raise ValueError(f'num_batches={num_batches} must be >= 0')
        self.num_batches = int(num_batches)
        self.std_range = (float(std_range[0]), float(std_range[1]))
        self.max_abs_mean = float(max_abs_mean)
        self.seen = 0
        self.done = self.num_batches == 0
        #: per modality: [count, sum (C,), sum of squares (C,)] in float64
        self._moments: Dict[str, list] = {}
        #: the last verdict: per modality, (bad band indices, mean, std)
        self.report: Dict[str, Tuple[List[int], Tensor, Tensor]] = {}

    def update(self, key: str, batch: Tensor, band_axis: int) -> None:
        """Add one normalised batch of a modality.

        Args:
            key: Modality key (``'s2'``, ``'enmap'``).
            batch: float tensor, bands on ``band_axis`` (S2 (B, T, C, H, W)
                with axis 2, EnMAP (B, C, h, w) with axis 1).
            band_axis: Axis of the bands.
        """
        if self.done:
            return
        with torch.no_grad():
            # (..., C, ...) -> (C, N)
            rows = batch.detach().movedim(band_axis, 0).reshape(
                batch.shape[band_axis], -1).to(torch.float64)
            count = rows.shape[1]
            total = rows.sum(dim=1).cpu()
            squares = (rows * rows).sum(dim=1).cpu()
        entry = self._moments.get(key)
        if entry is None:
            self._moments[key] = [count, total, squares]
        else:
            entry[0] += count
            entry[1] += total
            entry[2] += squares

    def step(self) -> None:
        """Mark the end of a batch; judge and warn after ``num_batches``."""
        if self.done:
            return
        self.seen += 1
        if self.seen >= self.num_batches:
            self.done = True
            self.judge()

    def judge(self) -> bool:
        """Check the accumulated moments; log one warning if they do not fit.

        Returns:
            Whether the statistics fit the data.
        """
        lines = []
        low, high = self.std_range
        for key, (count, total, squares) in self._moments.items():
            mean = total / count
            std = (squares / count - mean * mean).clamp_min(0).sqrt()
            bad = ((std < low) | (std > high) |
                   (mean.abs() > self.max_abs_mean))
            indices = torch.nonzero(bad).flatten().tolist()
            self.report[key] = (indices, mean, std)
            if indices:
                sel = torch.tensor(indices)
                lines.append(
                    f'{key} bands {_ranges(indices)}: normalised std '
                    f'{float(std[sel].min()):.3g}..{float(std[sel].max()):.3g}'
                    f', mean {float(mean[sel].min()):.3g}..'
                    f'{float(mean[sel].max()):.3g}')
        self._moments = {}
        if not lines:
            return True
        MMLogger.get_current_instance().warning(
            'the configured band statistics (model.data_preprocessor.mean / '
            f'std) do not fit the data of the first {self.seen} batch(es) '
            f'(expected per-band std in [{low:g}, {high:g}] and |mean| <= '
            f'{self.max_abs_mean:g} after normalisation): '
            + '; '.join(lines) + '. Compute the statistics of your data '
            f'with `{BAND_STATS_COMMAND}` and use the band_stats.py it '
            'writes.')
        return False
