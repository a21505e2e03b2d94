"""Metric formulas of the paper's protocol, as pure functions.

Per class, from summed confusion counts (intersection I, predicted area P,
ground-truth area G), and per level from the per-class values. Used by
:class:`~h2crop.evaluation.metrics.HierarchicalSegMetric` and the demo;
independent of mmengine so they can be tested and reused on their own.
"""
import math
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from einops import rearrange

#: Per-class statistics, in the order of the tables and CSV columns.
CLASS_METRICS: Tuple[str, ...] = ('IoU', 'Acc', 'Fscore', 'Precision',
                                  'Recall')
#: Per-level summary statistics (the returned ``<level>/<name>`` keys).
SUMMARY_METRICS: Tuple[str, ...] = ('aAcc', 'mIoU', 'mAcc', 'mFscore',
                                    'mPrecision', 'mRecall')
#: Summary statistics that are also averaged over the evaluated levels.
LEVEL_MEAN_METRICS: Tuple[str, ...] = ('mFscore', 'mIoU')
#: Pixel subsets: all pixels, pixels whose label differs from the prior
#: (``changed``) and pixels whose label equals the prior (``unchanged``).
ALL, CHANGED, UNCHANGED = 'all', 'changed', 'unchanged'
SUBSETS: Tuple[str, ...] = (ALL, CHANGED, UNCHANGED)
#: Metric key of the share of pixels whose predicted levels form a path.
HIERARCHY_KEY = 'hierarchy_consistency'
#: Rows of a (3, C) count array: intersection, predicted, ground truth.
INTERSECT, PRED, GT = 0, 1, 2


def class_metrics(intersect: np.ndarray,
                  pred_area: np.ndarray,
                  gt_area: np.ndarray,
                  beta: float = 1.0) -> Dict[str, np.ndarray]:
    """Per-class statistics from summed confusion counts (fractions, not %).

    With I, P, G the intersection, predicted and ground-truth pixel counts
    of a class and U = P + G - I:

    * ``IoU`` = I / U; NaN when U = 0 (class neither present nor predicted).
    * ``Acc`` = ``Recall`` = I / G; NaN when G = 0.
    * ``Precision`` = I / P; NaN when P = 0 (never predicted), no epsilon.
    * ``Fscore`` = (1 + b²) I / (b² G + P) when G > 0, else NaN. This equals
      (1 + b²) P R / (b² P + R) where both are defined, and is **0** for a
      class present in the ground truth with I = 0 (never predicted, or
      predicted only on wrong pixels), where mmseg's ``IoUMetric`` gets
      NaN and drops the class from mFscore. This is the paper's protocol.

    Args:
        intersect: Correctly predicted pixels per class, shape (C,).
        pred_area: Predicted pixels per class, shape (C,).
        gt_area: Ground-truth pixels per class, shape (C,).
        beta: Weight of recall in the F-score.

    Returns:
        Dict with keys :data:`CLASS_METRICS`, each a float64 array (C,).
    """
    i = np.asarray(intersect, dtype=np.float64)
    p = np.asarray(pred_area, dtype=np.float64)
    g = np.asarray(gt_area, dtype=np.float64)
    u = p + g - i
    b2 = float(beta)**2
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = np.where(u > 0, i / u, np.nan)
        recall = np.where(g > 0, i / g, np.nan)
        precision = np.where(p > 0, i / p, np.nan)
        fscore = np.where(g > 0, (1 + b2) * i / (b2 * g + p), np.nan)
    return OrderedDict(IoU=iou, Acc=recall, Fscore=fscore,
                       Precision=precision, Recall=recall.copy())


def nanmean(values: Sequence[float]) -> float:
    """Mean over the non-NaN entries; NaN when there are none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def summary_metrics(per_class: Dict[str, np.ndarray], intersect: np.ndarray,
                    gt_area: np.ndarray) -> Dict[str, float]:
    """AAcc and NaN-ignoring class means (fractions, not %).

    Args:
        per_class: Output of :func:`class_metrics` (possibly sliced).
        intersect: Intersection counts of the same classes, shape (C,).
        gt_area: Ground-truth counts of the same classes, shape (C,).

    Returns:
        Dict with keys :data:`SUMMARY_METRICS`.
    """
    total = float(np.sum(gt_area))
    out = OrderedDict(aAcc=float(np.sum(intersect)) /
                      total if total > 0 else math.nan)
    for name in ('IoU', 'Acc', 'Fscore', 'Precision', 'Recall'):
        out['m' + name] = nanmean(per_class[name])
    return out


def subset_key(subset: str) -> str:
    """Key infix of a pixel subset: ``''`` for all pixels, else ``'<s>/'``."""
    return '' if subset == ALL else subset + '/'


def percent(value: float) -> float:
    """A fraction as a percentage rounded to 2 decimals (NaN stays NaN)."""
    return math.nan if math.isnan(value) else round(value * 100.0, 2)


def area_counts(pred: torch.Tensor,
                gt: torch.Tensor,
                num_classes: int,
                subset: Optional[torch.Tensor] = None) -> np.ndarray:
    """Per-subset (intersection, predicted, ground truth) bincounts.

    Args:
        pred: Predicted ids, shape (N,), int64.
        gt: Ground-truth ids, shape (N,), int64.
        num_classes: C.
        subset: Subset index per pixel in ``0..1``, shape (N,), or None for
            a single subset.

    Returns:
        int64 array of shape (S, 3, C) on the CPU (S = 1 or 2), rows
        :data:`INTERSECT`, :data:`PRED`, :data:`GT`.
    """
    num_subsets = 1 if subset is None else 2
    offset = 0 if subset is None else subset * num_classes
    gt_key, pred_key = gt + offset, pred + offset
    length = num_subsets * num_classes
    hit = pred == gt
    counts = torch.stack([
        torch.bincount(gt_key[hit], minlength=length),
        torch.bincount(pred_key, minlength=length),
        torch.bincount(gt_key, minlength=length),
    ])  # (3, S*C)
    counts = rearrange(counts, 'r (s c) -> s r c', s=num_subsets)
    return counts.cpu().numpy().astype(np.int64)
