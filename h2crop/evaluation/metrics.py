"""Hierarchical segmentation metric of H2Crop (the paper's protocol).

Per taxonomy level, confusion counts (intersection, predicted area, ground
truth area per class) are summed over the whole split and turned into
per-class IoU, Acc (= recall), Precision and F-score, their means and the
overall pixel accuracy aAcc. The definitions equal mmseg's ``IoUMetric`` on
the same counts except for the F-score of a class that is present in the
ground truth but never correctly predicted (see :func:`class_metrics`).
"""
import csv
import json
import logging
import math
import os.path as osp
import time
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from einops import rearrange
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmengine.utils import mkdir_or_exist
from prettytable import PrettyTable

from ..constants import BACKGROUND_ID, LEVELS
from ..registry import METRICS
from ..taxonomy import Taxonomy, load_taxonomy

#: Pixel subsets: all pixels, pixels whose label differs from the prior
#: (``changed``) and pixels whose label equals the prior (``unchanged``).
ALL, CHANGED, UNCHANGED = 'all', 'changed', 'unchanged'
SUBSETS: Tuple[str, ...] = (ALL, CHANGED, UNCHANGED)
#: Per-class statistics, in the order of the tables and CSV columns.
CLASS_METRICS: Tuple[str, ...] = ('IoU', 'Acc', 'Fscore', 'Precision',
                                  'Recall')
#: Per-level summary statistics (the returned ``<level>/<name>`` keys).
SUMMARY_METRICS: Tuple[str, ...] = ('aAcc', 'mIoU', 'mAcc', 'mFscore',
                                    'mPrecision', 'mRecall')
#: Summary statistics that are also averaged over the evaluated levels.
LEVEL_MEAN_METRICS: Tuple[str, ...] = ('mFscore', 'mIoU')
HIERARCHY_KEY = 'hierarchy_consistency'
# rows of a per-sample count array: intersection, predicted, ground truth
_INTERSECT, _PRED, _GT = 0, 1, 2


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


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-NaN entries; NaN when there are none."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def summary_metrics(per_class: Dict[str, np.ndarray], intersect: np.ndarray,
                    gt_area: np.ndarray) -> Dict[str, float]:
    """aAcc and NaN-ignoring class means (fractions, not %).

    Args:
        per_class: Output of :func:`class_metrics` (possibly sliced).
        intersect: Intersection counts of the same classes, shape (C,).
        gt_area: Ground-truth counts of the same classes, shape (C,).

    Returns:
        Dict with keys :data:`SUMMARY_METRICS`.
    """
    total = float(np.sum(gt_area))
    out = OrderedDict(aAcc=float(np.sum(intersect)) / total
                      if total > 0 else math.nan)
    for name in ('IoU', 'Acc', 'Fscore', 'Precision', 'Recall'):
        out['m' + name] = _nanmean(per_class[name])
    return out


def _percent(value: float) -> float:
    """A fraction as a percentage rounded to 2 decimals (NaN stays NaN)."""
    return math.nan if math.isnan(value) else round(value * 100.0, 2)


@METRICS.register_module()
class HierarchicalSegMetric(BaseMetric):
    """Per-level segmentation metrics of the cascade, the paper's protocol.

    For every evaluated level, per-class counts are accumulated per sample
    (bincounts on the tensors' device) and summed over the split in
    :meth:`compute_metrics`. Per-sample entries in ``self.results`` let
    mmengine's ``collect_results`` drop the ``DistributedSampler`` padding
    exactly, so an N-process evaluation equals a 1-process one.

    Returned keys (values in **percent**, like mmseg: fraction × 100, rounded
    to 2 decimals; NaN where undefined):

    * ``<level>/aAcc``, ``<level>/mIoU``, ``<level>/mAcc``,
      ``<level>/mFscore``, ``<level>/mPrecision``, ``<level>/mRecall`` for
      every evaluated level (e.g. ``level3/mFscore``);
    * ``mFscore`` and ``mIoU``: the mean over the evaluated levels of the
      level values (``mFscore`` is the checkpoint selection criterion);
    * with priors (every sample carries ``prior_sem_seg`` and
      ``prior_subsets``): the same per-level keys restricted to changed
      (label ≠ prior of the same level) and unchanged pixels,
      ``<level>/changed/mFscore``, ``<level>/unchanged/aAcc``, ..., and their
      level means ``changed/mFscore``, ``changed/mIoU``,
      ``unchanged/mFscore``, ``unchanged/mIoU``;
    * ``hierarchy_consistency``: the share of pixels whose predicted
      level1..level4 ids form a path of the taxonomy. Only present when the
      taxonomy has a hierarchy (a real ``cascade_labels.csv``), all four
      levels are evaluated and the class counts are the taxonomy's;
      otherwise the key is absent and the log says why.

    The metric keys carry no prefix unless ``prefix`` is given
    (``default_prefix`` is ``''``), so ``save_best='mFscore'`` works.

    Args:
        levels: Level names to evaluate (a subset of
            :data:`~h2crop.constants.LEVELS`). None takes them from each
            sample's ``levels`` metainfo (all samples must agree).
        taxonomy: A ``cascade_labels.csv`` path, a :class:`Taxonomy`, or
            None for the numeric fallback (names ``levelK_classN``, no
            hierarchy).
        num_classes: Classes per level including background. None uses the
            taxonomy's; else a dict ``{level: n}`` or a sequence of one value
            per taxonomy level (length 4).
        exclude_background: Drop class 0 from the per-class statistics, the
            class means and aAcc (which then is the accuracy over pixels
            whose ground truth is a crop). Pixel counts are not changed:
            background pixels predicted as crop class c still lower c's
            precision, and crop pixels predicted as background still lower
            recall. Hierarchy consistency still uses all pixels.
        prior_subsets: Also evaluate changed / unchanged pixels when the
            samples carry ``prior_sem_seg``.
        beta: Weight of recall in the F-score (1: F1, as in the paper).
        output_dir: When set, :meth:`compute_metrics` writes
            ``<file_prefix>_<timestamp>_per_class.csv``, ``..._per_level.csv``
            and ``<file_prefix>_<timestamp>.json`` there; an existing file is
            never overwritten (a ``_<n>`` suffix is added to the stem).
        file_prefix: Stem prefix of the written files.
        log_per_class: Log a per-class table (all pixels) for every level.
        collect_device: Device for collecting results across ranks.
        prefix: Prefix added to every returned key (``'<prefix>/...'``).
        collect_dir: Directory for CPU collection across ranks.
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 levels: Optional[Sequence[str]] = None,
                 taxonomy: Union[str, Taxonomy, None] = None,
                 num_classes: Union[Sequence[int], Dict[str, int],
                                    None] = None,
                 exclude_background: bool = False,
                 prior_subsets: bool = True,
                 beta: float = 1.0,
                 output_dir: Optional[str] = None,
                 file_prefix: str = 'metrics',
                 log_per_class: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        if levels is not None:
            levels = tuple(levels)
            unknown = [lv for lv in levels if lv not in LEVELS]
            if unknown or not levels or len(set(levels)) != len(levels):
                raise ValueError(f'levels {levels}: expected distinct names '
                                 f'from {LEVELS}')
        self.levels: Optional[Tuple[str, ...]] = levels
        self.taxonomy: Taxonomy = (taxonomy if isinstance(taxonomy, Taxonomy)
                                   else load_taxonomy(taxonomy))
        self.num_classes: Dict[str, int] = self._resolve_num_classes(
            num_classes)
        self.exclude_background = bool(exclude_background)
        self.prior_subsets = bool(prior_subsets)
        if beta <= 0:
            raise ValueError(f'beta must be positive, got {beta}')
        self.beta = float(beta)
        self.output_dir = output_dir
        self.file_prefix = file_prefix
        self.log_per_class = bool(log_per_class)
        self._parent_cache: Dict[str, List[torch.Tensor]] = {}

    # ------------------------------------------------------------ set-up
    def _resolve_num_classes(
            self, num_classes: Union[Sequence[int], Dict[str, int], None]
    ) -> Dict[str, int]:
        tax_counts = dict(zip(LEVELS, self.taxonomy.num_classes))
        if num_classes is None:
            return tax_counts
        if isinstance(num_classes, dict):
            unknown = [k for k in num_classes if k not in LEVELS]
            if unknown:
                raise ValueError(f'num_classes has unknown levels {unknown}; '
                                 f'expected keys from {LEVELS}')
            counts = dict(tax_counts)
            counts.update({k: int(v) for k, v in num_classes.items()})
        else:
            values = list(num_classes)
            if len(values) != len(LEVELS):
                raise ValueError(f'num_classes {values}: expected one value '
                                 f'per taxonomy level {LEVELS} or a dict')
            counts = {lv: int(v) for lv, v in zip(LEVELS, values)}
        bad = {k: v for k, v in counts.items() if v < 2}
        if bad:
            raise ValueError(f'num_classes {bad}: every level needs at least '
                             'background and one class')
        return counts

    def class_names(self, level: str) -> Tuple[str, ...]:
        """Names of the ``num_classes[level]`` ids of a level.

        Ids beyond the taxonomy's classes are named by their number.
        """
        names = self.taxonomy.level_names(level)
        n = self.num_classes[level]
        return tuple(names[i] if i < len(names) else str(i) for i in range(n))

    def _hierarchy_unavailable(self, levels: Sequence[str]) -> Optional[str]:
        """Why hierarchy consistency cannot be computed, or None if it can."""
        if not self.taxonomy.has_hierarchy:
            return ('the taxonomy has no hierarchy (numeric fallback; pass '
                    'taxonomy=<cascade_labels.csv>)')
        if tuple(sorted(levels, key=LEVELS.index)) != LEVELS:
            return f'it needs all of {LEVELS}, evaluated {tuple(levels)}'
        if tuple(self.num_classes[lv] for lv in LEVELS) != \
                self.taxonomy.num_classes:
            return (f'num_classes {self.num_classes} differ from the '
                    f'taxonomy\'s {self.taxonomy.num_classes}')
        return None

    def _parents_on(self, device: torch.device) -> List[torch.Tensor]:
        """Parent maps of level2..level4 as int64 tensors on ``device``."""
        key = str(device)
        if key not in self._parent_cache:
            self._parent_cache[key] = [
                torch.as_tensor(self.taxonomy.parent_map(lv),
                                dtype=torch.int64, device=device)
                for lv in LEVELS[1:]
            ]
        return self._parent_cache[key]

    # ------------------------------------------------------------ process
    @staticmethod
    def _describe(sample: dict) -> str:
        return str(sample.get('sample_id') or sample.get('h5_path')
                   or '<sample without sample_id>')

    @staticmethod
    def _stack(sample: dict, key: str, where: str) -> Optional[torch.Tensor]:
        """The (L, H, W) int64 tensor of ``sample[key]['data']`` or None."""
        entry = sample.get(key)
        if entry is None:
            return None
        data = entry['data'] if isinstance(entry, dict) else entry.data
        data = torch.as_tensor(data)
        if data.dim() == 2:
            data = data.unsqueeze(0)  # (H, W) -> (1, H, W)
        if data.dim() != 3:
            raise ValueError(f'{where}: {key} has shape {tuple(data.shape)}; '
                             'expected (L, H, W) or (H, W)')
        if data.dtype.is_floating_point or data.dtype == torch.bool:
            raise ValueError(f'{where}: {key} has dtype {data.dtype}; '
                             'expected integer class ids')
        return data.long()

    def _sample_levels(self, sample: dict, num_rows: int,
                       where: str) -> Tuple[Tuple[str, ...], List[int]]:
        """Evaluated levels of a sample and the rows holding them."""
        meta = sample.get('levels')
        meta = tuple(meta) if meta is not None else None
        if meta is None:
            if self.levels is None:
                raise ValueError(f'{where}: the sample has no `levels` '
                                 'metainfo and the metric no `levels` '
                                 'argument; cannot tell which level each '
                                 'row is')
            if num_rows != len(self.levels):
                raise ValueError(f'{where}: {num_rows} label rows for the '
                                 f'metric levels {self.levels}')
            return self.levels, list(range(num_rows))
        if len(meta) != num_rows:
            raise ValueError(f'{where}: `levels` metainfo {meta} has '
                             f'{len(meta)} entries for {num_rows} rows')
        levels = self.levels if self.levels is not None else meta
        missing = [lv for lv in levels if lv not in meta]
        if missing:
            raise ValueError(f'{where}: levels {missing} to evaluate are not '
                             f'in the sample\'s levels {meta}')
        return levels, [meta.index(lv) for lv in levels]

    def _check_range(self, values: torch.Tensor, level: str, what: str,
                     where: str) -> None:
        if values.numel() == 0:
            return
        lo, hi = torch.aminmax(values)
        n = self.num_classes[level]
        if int(lo) < 0 or int(hi) >= n:
            raise ValueError(f'{where}: {what} of {level} has ids in '
                             f'[{int(lo)}, {int(hi)}]; expected 0..{n - 1}')

    def _area_counts(self, pred: torch.Tensor, gt: torch.Tensor,
                     num_classes: int,
                     subset: Optional[torch.Tensor]) -> np.ndarray:
        """Per-subset (intersection, predicted, ground truth) bincounts.

        Args:
            pred: Predicted ids, shape (N,), int64.
            gt: Ground-truth ids, shape (N,), int64.
            num_classes: C.
            subset: Subset index per pixel in ``0..S-1``, shape (N,), or None
                for a single subset.

        Returns:
            int64 array of shape (S, 3, C) on the CPU.
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

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Accumulate per-sample counts.

        Args:
            data_batch: The batch from the dataloader (unused).
            data_samples: Per sample ``SegDataSample.to_dict()`` (or the
                data sample itself) with ``pred_sem_seg.data`` and
                ``gt_sem_seg.data`` of shape (L, H, W) (or (H, W) for one
                level), optionally ``prior_sem_seg.data`` (L, H, W), and the
                ``levels`` metainfo naming the L rows.
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            where = self._describe(sample)
            pred = self._stack(sample, 'pred_sem_seg', where)
            gt = self._stack(sample, 'gt_sem_seg', where)
            if pred is None or gt is None:
                raise ValueError(f'{where}: the sample needs pred_sem_seg '
                                 'and gt_sem_seg')
            if pred.shape != gt.shape:
                raise ValueError(f'{where}: pred_sem_seg {tuple(pred.shape)}'
                                 f' and gt_sem_seg {tuple(gt.shape)} differ')
            gt = gt.to(pred.device)
            prior = (self._stack(sample, 'prior_sem_seg', where)
                     if self.prior_subsets else None)
            if prior is not None:
                if prior.shape != gt.shape:
                    raise ValueError(f'{where}: prior_sem_seg '
                                     f'{tuple(prior.shape)} and gt_sem_seg '
                                     f'{tuple(gt.shape)} differ')
                prior = prior.to(pred.device)
            levels, rows = self._sample_levels(sample, pred.shape[0], where)

            counts = {}
            for level, row in zip(levels, rows):
                p = pred[row].reshape(-1)  # (H, W) -> (H*W,)
                g = gt[row].reshape(-1)  # (H, W) -> (H*W,)
                self._check_range(p, level, 'pred_sem_seg', where)
                self._check_range(g, level, 'gt_sem_seg', where)
                # subset 0: changed (label != prior), 1: unchanged
                subset = (None if prior is None else
                          (prior[row].reshape(-1) == g).long())  # (H*W,)
                counts[level] = self._area_counts(
                    p, g, self.num_classes[level], subset)

            consistency = None
            if self._hierarchy_unavailable(levels) is None:
                by_level = dict(zip(levels, rows))
                parents = self._parents_on(pred.device)
                ok = torch.ones_like(pred[0], dtype=torch.bool)  # (H, W)
                for k in range(1, len(LEVELS)):
                    fine = pred[by_level[LEVELS[k]]]
                    coarse = pred[by_level[LEVELS[k - 1]]]
                    ok &= parents[k - 1][fine] == coarse
                consistency = np.array([int(ok.sum()), ok.numel()],
                                       dtype=np.int64)
            self.results.append(
                dict(levels=tuple(levels), counts=counts,
                     consistency=consistency))

    # ------------------------------------------------------------ compute
    def _total_counts(
        self, results: List[dict]
    ) -> Tuple[Tuple[str, ...], Dict[str, Dict[str, np.ndarray]],
               Optional[np.ndarray], bool]:
        """Sum per-sample counts.

        Returns:
            The levels, ``{subset: {level: (3, C) counts}}``, the summed
            hierarchy counts (consistent, total) or None, and whether the
            changed / unchanged subsets are available.
        """
        levels = results[0]['levels']
        for res in results:
            if res['levels'] != levels:
                raise ValueError(f'samples were evaluated on different '
                                 f'levels ({levels} and {res["levels"]}); '
                                 'set the metric `levels` argument')
        with_prior = [res['counts'][levels[0]].shape[0] == 2
                      for res in results]
        subsets_ok = all(with_prior)
        if any(with_prior) and not subsets_ok:
            print_log(f'{sum(with_prior)} of {len(results)} samples carry a '
                      'prior: changed / unchanged metrics are skipped',
                      logger='current', level=logging.WARNING)
        totals: Dict[str, Dict[str, np.ndarray]] = {
            s: {} for s in (SUBSETS if subsets_ok else (ALL, ))}
        for level in levels:
            stacked = [res['counts'][level] for res in results]
            totals[ALL][level] = sum(c.sum(axis=0) for c in stacked)
            if subsets_ok:
                totals[CHANGED][level] = sum(c[0] for c in stacked)
                totals[UNCHANGED][level] = sum(c[1] for c in stacked)
        hierarchy = None
        if all(res['consistency'] is not None for res in results):
            hierarchy = sum(res['consistency'] for res in results)
        return levels, totals, hierarchy, subsets_ok

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the metrics from the per-sample counts of all ranks.

        Args:
            results: The entries appended by :meth:`process`.

        Returns:
            The keys described in the class docstring, values in percent.
        """
        if not results:
            print_log('HierarchicalSegMetric: no results to evaluate',
                      logger='current', level=logging.WARNING)
            return {}
        levels, totals, hierarchy, _ = self._total_counts(results)
        # background is id 0, the first class row
        first = BACKGROUND_ID + 1 if self.exclude_background else 0
        tables: Dict[str, Dict[str, Dict[str, Any]]] = {}
        metrics: Dict[str, float] = OrderedDict()
        for subset, per_level in totals.items():
            tables[subset] = {}
            key_subset = '' if subset == ALL else subset + '/'
            for level in levels:
                counts = per_level[level][:, first:]  # drop class 0 if asked
                per_class = class_metrics(counts[_INTERSECT], counts[_PRED],
                                          counts[_GT], self.beta)
                summary = summary_metrics(per_class, counts[_INTERSECT],
                                          counts[_GT])
                tables[subset][level] = dict(per_class=per_class,
                                             summary=summary, counts=counts)
                for name, value in summary.items():
                    metrics[f'{level}/{key_subset}{name}'] = _percent(value)
            for name in LEVEL_MEAN_METRICS:
                metrics[f'{key_subset}{name}'] = _percent(_nanmean(
                    [tables[subset][lv]['summary'][name] for lv in levels]))
        reason = self._hierarchy_unavailable(levels)
        if hierarchy is not None and hierarchy[1] > 0:
            metrics[HIERARCHY_KEY] = _percent(hierarchy[0] / hierarchy[1])
        elif reason is None:
            reason = 'no sample had hierarchy counts'

        self._log(levels, tables, metrics, reason, first)
        if self.output_dir is not None:
            self._write(levels, tables, metrics, len(results), first)
        return dict(metrics)

    # ------------------------------------------------------------ report
    def _log(self, levels: Sequence[str], tables: dict, metrics: dict,
             hierarchy_reason: Optional[str], first: int) -> None:
        bg = ' (background excluded)' if self.exclude_background else ''
        if self.log_per_class:
            for level in levels:
                entry = tables[ALL][level]
                names = self.class_names(level)[first:]
                table = PrettyTable()
                table.add_column('Id', list(range(first, first + len(names))))
                table.add_column('Class', list(names))
                for name in ('IoU', 'Fscore', 'Precision', 'Recall'):
                    table.add_column(name, [
                        _percent(v) for v in entry['per_class'][name]])
                table.add_column('GT px', entry['counts'][_GT].tolist())
                table.add_column('Pred px', entry['counts'][_PRED].tolist())
                print_log(f'{level} per-class results{bg}:\n'
                          f'{table.get_string()}', logger='current')
        for subset in tables:
            key_subset = '' if subset == ALL else subset + '/'
            table = PrettyTable()
            table.field_names = ['Level'] + list(SUMMARY_METRICS)
            for level in levels:
                table.add_row([level] + [
                    metrics[f'{level}/{key_subset}{n}']
                    for n in SUMMARY_METRICS])
            print_log(f'per-level results, {subset} pixels{bg}:\n'
                      f'{table.get_string()}\n'
                      f'mean over levels: '
                      f'mFscore {metrics[key_subset + "mFscore"]}, '
                      f'mIoU {metrics[key_subset + "mIoU"]}',
                      logger='current')
        if HIERARCHY_KEY in metrics:
            print_log(f'hierarchy consistency of the predictions: '
                      f'{metrics[HIERARCHY_KEY]} % of pixels',
                      logger='current')
        else:
            print_log(f'hierarchy consistency not computed: '
                      f'{hierarchy_reason}', logger='current')

    def _free_stem(self) -> str:
        """A file stem in ``output_dir`` none of whose files exist yet."""
        stem = f'{self.file_prefix}_{time.strftime("%Y%m%d_%H%M%S")}'
        candidate, n = stem, 0
        while any(osp.exists(osp.join(self.output_dir, candidate + suffix))
                  for suffix in ('_per_class.csv', '_per_level.csv',
                                 '.json')):
            n += 1
            candidate = f'{stem}_{n}'
        return candidate

    def _write(self, levels: Sequence[str], tables: dict, metrics: dict,
               num_samples: int, first: int) -> Dict[str, str]:
        """Write per-class CSV, per-level CSV and a JSON summary.

        Returns:
            The written paths by kind (``per_class``, ``per_level``,
            ``json``).
        """
        mkdir_or_exist(self.output_dir)
        stem = osp.join(self.output_dir, self._free_stem())
        paths = dict(per_class=stem + '_per_class.csv',
                     per_level=stem + '_per_level.csv', json=stem + '.json')

        def cell(value: float) -> str:
            return '' if math.isnan(value) else f'{value:.2f}'

        # mode 'x': fail rather than overwrite a file created meanwhile
        with open(paths['per_class'], 'x', newline='',
                  encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['subset', 'level', 'class_id', 'class_name'] +
                            list(CLASS_METRICS) +
                            ['intersect', 'union', 'pred_pixels',
                             'gt_pixels'])
            for subset, per_level in tables.items():
                for level in levels:
                    entry = per_level[level]
                    names = self.class_names(level)[first:]
                    c = entry['counts']
                    union = c[_PRED] + c[_GT] - c[_INTERSECT]
                    for j, name in enumerate(names):
                        writer.writerow(
                            [subset, level, first + j, name] +
                            [cell(_percent(entry['per_class'][m][j]))
                             for m in CLASS_METRICS] +
                            [int(c[_INTERSECT][j]), int(union[j]),
                             int(c[_PRED][j]), int(c[_GT][j])])
        with open(paths['per_level'], 'x', newline='',
                  encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['subset', 'level'] + list(SUMMARY_METRICS))
            for subset in tables:
                key_subset = '' if subset == ALL else subset + '/'
                for level in levels:
                    writer.writerow([subset, level] + [
                        cell(metrics[f'{level}/{key_subset}{n}'])
                        for n in SUMMARY_METRICS])
        summary = dict(
            metrics={k: (None if math.isnan(v) else v)
                     for k, v in metrics.items()},
            levels=list(levels),
            subsets=list(tables),
            num_samples=num_samples,
            exclude_background=self.exclude_background,
            beta=self.beta,
            units='percent, rounded to 2 decimals',
            taxonomy=self.taxonomy.source,
            num_classes={lv: self.num_classes[lv] for lv in levels},
            files={k: osp.basename(v) for k, v in paths.items()})
        with open(paths['json'], 'x', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)
        print_log(f'metrics written to {paths["per_class"]}, '
                  f'{paths["per_level"]} and {paths["json"]}',
                  logger='current')
        return paths
