"""Matplotlib figures for h2crop (headless, Agg backend)."""
from typing import Dict, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from h2crop.constants import S2_BAND_NAMES  # noqa: E402

#: Indices of B4, B3, B2 (red, green, blue) among the 10 S2 bands
#: (:data:`~h2crop.constants.S2_BAND_NAMES`).
S2_RGB_BANDS = tuple(S2_BAND_NAMES.index(b) for b in ('B4', 'B3', 'B2'))


def s2_true_color(s2: np.ndarray, month: Optional[int] = None) -> np.ndarray:
    """True-colour composite of an S2 series, 2-98 % stretched.

    Args:
        s2: Reflectances of shape (T, 10, H, W).
        month: 0-based month to show; default the middle of the series.

    Returns:
        uint8 array of shape (H, W, 3).
    """
    s2 = np.asarray(s2)
    t = s2.shape[0] // 2 if month is None else month
    rgb = s2[t, list(S2_RGB_BANDS)].astype(np.float32)  # (3, H, W)
    lo, hi = np.percentile(rgb, 2), np.percentile(rgb, 98)
    rgb = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1)
    return (rgb.transpose(1, 2, 0) * 255).astype(np.uint8)  # (H, W, 3)


def _palette(num_classes: int) -> np.ndarray:
    """Deterministic colours; id 0 (background) is black. (N, 3) uint8."""
    rng = np.random.default_rng(12345)
    pal = rng.integers(40, 256, size=(max(num_classes, 1), 3), dtype=np.int64)
    pal[0] = 0
    return pal.astype(np.uint8)


def colorize(ids: np.ndarray, num_classes: int) -> np.ndarray:
    """Map class ids (H, W) to colours (H, W, 3) uint8."""
    ids = np.asarray(ids, dtype=np.int64)
    return _palette(max(num_classes, int(ids.max()) + 1))[ids]


def plot_tile_predictions(s2: np.ndarray, gt: Optional[np.ndarray],
                          pred: np.ndarray, levels: Sequence[str],
                          num_classes: Sequence[int],
                          title: str = '',
                          names: Optional[Sequence[Sequence[str]]] = None,
                          max_legend: int = 12) -> plt.Figure:
    """Figure with the S2 composite and label / prediction per level.

    Args:
        s2: (T, 10, H, W) reflectances.
        gt: (L, H, W) label ids or None.
        pred: (L, H, W) predicted ids.
        levels: Level names of the L rows.
        num_classes: Classes (with background) per row.
        title: Figure title.
        names: Per level, the class names (index = id): each level's
            column gets a legend of the classes in its prediction and
            label, most frequent first.
        max_legend: Most classes listed per level.
    """
    rows = 2 if gt is not None else 1
    cols = len(levels) + 1
    extra = 1.6 if names is not None else 0.0  # room for the legends
    fig, axes = plt.subplots(rows, cols,
                             figsize=(2.6 * cols, 2.6 * rows + extra),
                             squeeze=False)
    axes[0, 0].imshow(s2_true_color(s2))
    axes[0, 0].set_title('S2 true colour')
    for r in range(rows):
        for c in range(cols):
            axes[r, c].axis('off')
    for i, level in enumerate(levels):
        axes[0, i + 1].imshow(colorize(pred[i], num_classes[i]))
        axes[0, i + 1].set_title(f'{level} prediction')
        if gt is not None:
            axes[1, i + 1].imshow(colorize(gt[i], num_classes[i]))
            acc = float((gt[i] == pred[i]).mean()) * 100
            axes[1, i + 1].set_title(f'{level} label ({acc:.0f}% px agree)')
        if names is not None:
            from .legend import legend_handles
            shown = pred[i] if gt is None else np.concatenate(
                [np.ravel(pred[i]), np.ravel(gt[i])])
            axes[rows - 1, i + 1].legend(
                handles=legend_handles(shown, names[i], max_legend),
                loc='upper center', bbox_to_anchor=(0.5, -0.04), fontsize=6,
                frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_level_scores(scores: Dict[str, float],
                      baseline: Optional[Dict[str, float]] = None,
                      metric: str = 'mFscore') -> plt.Figure:
    """Bar chart of a metric per level, optionally beside a baseline.

    Args:
        scores: level name -> value (percent).
        baseline: level name -> value of a reference (e.g. majority class).
        metric: Name for the axis label.
    """
    levels = list(scores)
    x = np.arange(len(levels))
    fig, ax = plt.subplots(figsize=(1.6 * len(levels) + 2, 3.2))
    width = 0.38 if baseline else 0.6
    bars = ax.bar(x - (width / 2 if baseline else 0),
                  [scores[k] for k in levels], width, label='model')
    ax.bar_label(bars, fmt='%.1f')
    if baseline:
        b = ax.bar(x + width / 2, [baseline.get(k, np.nan) for k in levels],
                   width, label='majority class', color='0.6')
        ax.bar_label(b, fmt='%.1f')
        ax.legend()
    ax.set_xticks(x, levels)
    ax.set_ylabel(f'{metric} (%)')
    ax.set_ylim(0, 100)
    fig.tight_layout()
    return fig
