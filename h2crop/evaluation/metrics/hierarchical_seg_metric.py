"""Hierarchical segmentation metric of H2Crop (the paper's protocol).

Per taxonomy level, confusion counts (intersection, predicted area, ground
truth area per class) are summed over the whole split and turned into
per-class IoU, Acc (= recall), Precision and F-score, their means and the
overall pixel accuracy aAcc. The formulas live in
:mod:`h2crop.evaluation.functional`, the tables and files in
:mod:`h2crop.evaluation.report`; this module counts and combines.
"""
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from h2crop.constants import BACKGROUND_ID, LEVELS
from h2crop.registry import METRICS
from h2crop.taxonomy import Taxonomy, load_taxonomy
from h2crop.validators import check_levels

from ..functional import (
    ALL,
    CHANGED,
    GT,
    HIERARCHY_KEY,
    INTERSECT,
    LEVEL_MEAN_METRICS,
    PRED,
    SUBSETS,
    UNCHANGED,
    area_counts,
    class_metrics,
    nanmean,
    percent,
    subset_key,
    summary_metrics,
)
from ..report import log_report, write_report


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
            levels = check_levels(levels)
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
                counts[level] = area_counts(p, g, self.num_classes[level],
                                            subset)

            consistency = None
            if self._hierarchy_unavailable(levels) is None:
                by_level = dict(zip(levels, rows))
                # (4, H, W) predictions in taxonomy order
                stack = pred[[by_level[lv] for lv in LEVELS]]
                ok = self.taxonomy.consistency_mask(stack, LEVELS)  # (H, W)
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
            key = subset_key(subset)
            for level in levels:
                counts = per_level[level][:, first:]  # drop class 0 if asked
                per_class = class_metrics(counts[INTERSECT], counts[PRED],
                                          counts[GT], self.beta)
                summary = summary_metrics(per_class, counts[INTERSECT],
                                          counts[GT])
                tables[subset][level] = dict(per_class=per_class,
                                             summary=summary, counts=counts)
                for name, value in summary.items():
                    metrics[f'{level}/{key}{name}'] = percent(value)
            for name in LEVEL_MEAN_METRICS:
                metrics[f'{key}{name}'] = percent(
                    nanmean([tables[subset][lv]['summary'][name]
                             for lv in levels]))
        reason = self._hierarchy_unavailable(levels)
        if hierarchy is not None and hierarchy[1] > 0:
            metrics[HIERARCHY_KEY] = percent(hierarchy[0] / hierarchy[1])
        elif reason is None:
            reason = 'no sample had hierarchy counts'

        def names(level: str) -> Tuple[str, ...]:
            return self.class_names(level)[first:]

        log_report(levels, tables, metrics, names, first,
                   log_per_class=self.log_per_class,
                   background_excluded=self.exclude_background,
                   hierarchy_reason=reason)
        if self.output_dir is not None:
            write_report(
                self.output_dir, self.file_prefix, levels, tables, metrics,
                names, first,
                summary=dict(
                    num_samples=len(results),
                    exclude_background=self.exclude_background,
                    beta=self.beta,
                    taxonomy=self.taxonomy.source,
                    num_classes={lv: self.num_classes[lv] for lv in levels}))
        return dict(metrics)
