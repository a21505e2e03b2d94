"""Parcel-level evaluation: one decision per parcel instead of per pixel.

Tiles converted from parcel vectors carry a per-pixel ``parcel_id``
(0 = no parcel). Per level, a parcel's prediction is the majority of its
pixels' predicted classes and its reference the majority of its pixels'
label (ties: the lowest id). Parcels cut by tile edges are merged across
tiles by id: votes are summed over all tiles, and across DDP ranks (the
per-sample entries travel through mmengine's ``collect_results`` like the
pixel counts of :class:`~h2crop.evaluation.HierarchicalSegMetric`).

Parcels whose reference is background (codes that map to no class) are not
evaluated and are counted separately. Per level the metric reports parcel
accuracy and the macro F-score / precision / recall over the classes
present among the reference parcels, with the pixel metric's conventions
(:func:`~h2crop.evaluation.class_metrics`: F = 0 for a present class never
predicted correctly, precision NaN for a class never predicted).
"""
import csv
import json
import logging
import math
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from mmengine.utils import mkdir_or_exist
from prettytable import PrettyTable

from h2crop.constants import BACKGROUND_ID, LEVELS
from h2crop.registry import METRICS
from h2crop.taxonomy import Taxonomy, load_taxonomy
from h2crop.validators import check_levels

from ..functional import class_metrics
from ..functional import nanmean as _nanmean
from ..functional import percent as _pct
from ..report import free_stem

#: SegDataSample field holding the parcel ids (see PackH2CropInputs).
PARCEL_FIELD = 'gt_parcel_id'
#: Per-level summary keys, in table / CSV order.
PARCEL_SUMMARY: Tuple[str, ...] = ('accuracy', 'mFscore', 'mPrecision',
                                   'mRecall', 'parcels')


def _votes(ids: torch.Tensor, values: torch.Tensor,
           num_classes: int) -> np.ndarray:
    """Pixel votes per (parcel, class) as rows ``(parcel_id, class, n)``.

    Args:
        ids: Parcel id per pixel (> 0), shape (N,), int64.
        values: Class id per pixel, shape (N,), int64.
        num_classes: C.

    Returns:
        int64 array (K, 3) of the non-zero (parcel, class) counts.
    """
    uniq, inverse = torch.unique(ids, return_inverse=True)
    counts = torch.bincount(inverse * num_classes + values,
                            minlength=len(uniq) * num_classes)
    counts = counts.reshape(len(uniq), num_classes)  # (Q*C,) -> (Q, C)
    rows, cls = torch.nonzero(counts, as_tuple=True)
    return torch.stack([uniq[rows], cls, counts[rows, cls]],
                       dim=1).cpu().numpy().astype(np.int64)


def majority(triples: np.ndarray,
             num_classes: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge vote rows by parcel id and take each parcel's majority.

    Args:
        triples: Rows ``(parcel_id, class, count)`` from any number of
            tiles / ranks, shape (K, 3).
        num_classes: C.

    Returns:
        Sorted parcel ids (P,), majority class per parcel (P,) (ties: the
        lowest id) and the summed votes (P, C).
    """
    if len(triples) == 0:
        return (np.zeros(0, np.int64), np.zeros(0, np.int64),
                np.zeros((0, num_classes), np.int64))
    ids, row = np.unique(triples[:, 0], return_inverse=True)
    votes = np.zeros((len(ids), num_classes), dtype=np.int64)
    np.add.at(votes, (row, triples[:, 1]), triples[:, 2])
    return ids, votes.argmax(axis=1), votes


@METRICS.register_module()
class ParcelMetric(BaseMetric):
    """Per-level parcel accuracy and macro F-score (majority vote).

    Returned keys (prefix ``parcel/``, values in percent rounded to 2
    decimals, NaN where undefined): ``parcel/<level>/accuracy``,
    ``parcel/<level>/mFscore``, ``parcel/<level>/mPrecision``,
    ``parcel/<level>/mRecall``, ``parcel/mFscore`` (mean over levels) and
    the counts ``parcel/num_parcels`` (evaluated) and
    ``parcel/num_unlabelled_parcels`` (reference background, skipped).

    Args:
        levels: Levels to evaluate; None takes each sample's ``levels``
            metainfo.
        taxonomy: ``cascade_labels.csv`` path, Taxonomy, or None (numeric
            names, the paper's counts).
        beta: Weight of recall in the F-score.
        output_dir: When set, writes ``<file_prefix>_<timestamp>`` +
            ``_per_class.csv``, ``_per_level.csv``, ``_per_parcel.csv`` and
            ``.json`` there, never overwriting a file.
        file_prefix: Stem prefix of the written files.
        collect_device: Device for collecting results across ranks.
        prefix: Prefix of the returned keys (default ``parcel``).
        collect_dir: Directory for CPU collection across ranks.
    """

    default_prefix: Optional[str] = 'parcel'

    def __init__(self,
                 levels: Optional[Sequence[str]] = None,
                 taxonomy: Union[str, Taxonomy, None] = None,
                 beta: float = 1.0,
                 output_dir: Optional[str] = None,
                 file_prefix: str = 'parcel_metrics',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        if levels is not None:
            levels = check_levels(levels)
        if beta <= 0:
            raise ValueError(f'beta must be positive, got {beta}')
        self.levels = levels
        self.taxonomy = (taxonomy if isinstance(taxonomy, Taxonomy) else
                         load_taxonomy(taxonomy))
        self.beta = float(beta)
        self.output_dir = output_dir
        self.file_prefix = file_prefix

    def num_classes(self, level: str) -> int:
        """Classes of a level including background."""
        return self.taxonomy.num_classes[LEVELS.index(level)]

    # ------------------------------------------------------------ process
    @staticmethod
    def _data(entry: Any) -> Optional[torch.Tensor]:
        if entry is None:
            return None
        data = entry['data'] if isinstance(entry, dict) else entry.data
        return torch.as_tensor(data)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Collect per-parcel votes of every sample.

        Args:
            data_batch: Unused.
            data_samples: ``SegDataSample`` (or its dict) with
                ``pred_sem_seg`` and ``gt_sem_seg`` (L, H, W),
                ``gt_parcel_id`` (1, H, W) and the ``levels`` metainfo.
                Samples without parcel ids add an empty entry.
        """
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            where = str(sample.get('sample_id') or sample.get('h5_path'))
            pids = self._data(sample.get(PARCEL_FIELD))
            pred = self._data(sample.get('pred_sem_seg'))
            gt = self._data(sample.get('gt_sem_seg'))
            if pred is None or gt is None:
                raise ValueError(f'{where}: the sample needs pred_sem_seg '
                                 'and gt_sem_seg')
            if pred.dim() == 2:
                pred, gt = pred[None], gt[None]  # (H, W) -> (1, H, W)
            levels = tuple(sample.get('levels') or self.levels or ())
            if len(levels) != pred.shape[0]:
                raise ValueError(f'{where}: {pred.shape[0]} prediction rows '
                                 f'for levels {levels}; set the metric\'s '
                                 '`levels` or the sample metainfo')
            entry = dict(levels=levels, votes=None)
            if pids is not None:
                pids = pids.reshape(pred.shape[-2:]).long().to(pred.device)
                if pids.shape != gt.shape[-2:]:
                    raise ValueError(f'{where}: {PARCEL_FIELD} '
                                     f'{tuple(pids.shape)} and gt_sem_seg '
                                     f'{tuple(gt.shape)} differ')
                inside = pids > 0  # (H, W)
                ids = pids[inside]  # (N,)
                entry['votes'] = {}
                for row, level in enumerate(levels):
                    if self.levels is not None and level not in self.levels:
                        continue
                    n = self.num_classes(level)
                    p = pred[row][inside].long()  # (N,)
                    g = gt[row].to(pred.device)[inside].long()  # (N,)
                    if len(p) and (int(p.max()) >= n or int(g.max()) >= n):
                        raise ValueError(f'{where}: {level} ids beyond '
                                         f'0..{n - 1}')
                    entry['votes'][level] = (_votes(ids, p, n),
                                             _votes(ids, g, n))
            self.results.append(entry)

    # ------------------------------------------------------------ compute
    def parcel_tables(self, results: List[dict]) -> Dict[str, dict]:
        """Per level: merged parcel ids, reference, prediction, counts.

        Returns:
            ``{level: dict(ids, gt, pred, share, evaluated)}``; ``share``
            is the fraction of a parcel's pixels voting for its prediction,
            ``evaluated`` masks parcels whose reference is not background.
        """
        levels: List[str] = []
        for res in results:
            for lv in (res['votes'] or {}):
                if lv not in levels:
                    levels.append(lv)
        tables = {}
        for level in sorted(levels, key=LEVELS.index):
            n = self.num_classes(level)
            with_level = [r['votes'][level] for r in results
                          if r['votes'] and level in r['votes']]
            pred_rows = np.concatenate([v[0] for v in with_level])
            gt_rows = np.concatenate([v[1] for v in with_level])
            ids, pred, votes = majority(pred_rows, n)
            gt_ids, gt, _ = majority(gt_rows, n)
            assert np.array_equal(ids, gt_ids)  # same pixels, same parcels
            share = votes[np.arange(len(ids)), pred] / np.maximum(
                votes.sum(axis=1), 1)
            tables[level] = dict(ids=ids, gt=gt, pred=pred, share=share,
                                 evaluated=gt != BACKGROUND_ID)
        return tables

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Parcel metrics from the entries of all ranks (see class doc)."""
        tables = self.parcel_tables(results)
        if not tables:
            print_log('ParcelMetric: no sample carries parcel ids '
                      f'({PARCEL_FIELD}); parcel metrics skipped',
                      logger='current', level=logging.WARNING)
            return {}
        metrics: Dict[str, float] = OrderedDict()
        per_class, level_f = {}, []
        for level, t in tables.items():
            n = self.num_classes(level)
            gt, pred = t['gt'][t['evaluated']], t['pred'][t['evaluated']]
            hit = gt == pred
            inter = np.bincount(gt[hit], minlength=n)
            pred_n = np.bincount(pred, minlength=n)
            gt_n = np.bincount(gt, minlength=n)
            stats = class_metrics(inter[1:], pred_n[1:], gt_n[1:],
                                  self.beta)  # crop classes only
            per_class[level] = dict(stats=stats, inter=inter[1:],
                                    pred=pred_n[1:], gt=gt_n[1:])
            metrics[f'{level}/accuracy'] = (_pct(hit.mean()) if len(gt)
                                            else math.nan)
            level_f.append(_nanmean(stats['Fscore']))
            for key, name in (('mFscore', 'Fscore'),
                              ('mPrecision', 'Precision'),
                              ('mRecall', 'Recall')):
                metrics[f'{level}/{key}'] = _pct(_nanmean(stats[name]))
            metrics[f'{level}/parcels'] = int(len(gt))
        metrics['mFscore'] = _pct(_nanmean(level_f))
        first = next(iter(tables.values()))
        metrics['num_parcels'] = int(first['evaluated'].sum())
        metrics['num_unlabelled_parcels'] = int((~first['evaluated']).sum())
        self._log(tables, metrics)
        if self.output_dir is not None:
            self._write(tables, per_class, metrics)
        return dict(metrics)

    # ------------------------------------------------------------ report
    def _log(self, tables: dict, metrics: dict) -> None:
        table = PrettyTable()
        table.field_names = ['Level'] + list(PARCEL_SUMMARY)
        for level in tables:
            table.add_row([level] + [metrics[f'{level}/{k}']
                                     for k in PARCEL_SUMMARY])
        print_log(f'parcel-level results (majority vote, '
                  f'{metrics["num_parcels"]} parcels; '
                  f'{metrics["num_unlabelled_parcels"]} with background '
                  f'reference skipped):\n{table.get_string()}\n'
                  f'mean over levels: mFscore {metrics["mFscore"]}',
                  logger='current')

    def _write(self, tables: dict, per_class: dict,
               metrics: dict) -> Dict[str, str]:
        """Write per-class, per-level, per-parcel CSVs and a JSON."""
        mkdir_or_exist(self.output_dir)
        suffixes = dict(per_class='_per_class.csv',
                        per_level='_per_level.csv',
                        per_parcel='_per_parcel.csv', json='.json')
        candidate = free_stem(self.output_dir, self.file_prefix,
                              tuple(suffixes.values()))
        paths = {k: osp.join(self.output_dir, candidate + s)
                 for k, s in suffixes.items()}

        def cell(value: float) -> str:
            return '' if math.isnan(value) else f'{value:.2f}'

        with open(paths['per_class'], 'x', newline='',
                  encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['level', 'class_id', 'class_name', 'Fscore',
                             'Precision', 'Recall', 'correct_parcels',
                             'pred_parcels', 'gt_parcels'])
            for level, pc in per_class.items():
                names = self.taxonomy.level_names(level)
                for j in range(len(pc['gt'])):
                    writer.writerow(
                        [level, j + 1, names[j + 1]] +
                        [cell(_pct(pc['stats'][m][j]))
                         for m in ('Fscore', 'Precision', 'Recall')] +
                        [int(pc['inter'][j]), int(pc['pred'][j]),
                         int(pc['gt'][j])])
        with open(paths['per_level'], 'x', newline='',
                  encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['level'] + list(PARCEL_SUMMARY))
            for level in tables:
                writer.writerow([level] + [
                    cell(float(metrics[f'{level}/{k}']))
                    if k != 'parcels' else metrics[f'{level}/{k}']
                    for k in PARCEL_SUMMARY])
        with open(paths['per_parcel'], 'x', newline='',
                  encoding='utf-8') as f:
            writer = csv.writer(f)
            levels = list(tables)
            writer.writerow(['parcel_id'] + [
                f'{lv}_{c}' for lv in levels
                for c in ('gt', 'pred', 'share')])
            first = tables[levels[0]]
            for i, pid in enumerate(first['ids']):
                row = [int(pid)]
                for lv in levels:
                    t = tables[lv]
                    row += [int(t['gt'][i]), int(t['pred'][i]),
                            f'{t["share"][i]:.4f}']
                writer.writerow(row)
        summary = dict(
            metrics={k: (None if isinstance(v, float) and math.isnan(v)
                         else v) for k, v in metrics.items()},
            levels=list(tables), beta=self.beta,
            units='percent, rounded to 2 decimals (counts: parcels)',
            rule='majority of pixel votes per parcel, parcels merged '
            'across tiles by id; background-reference parcels skipped',
            taxonomy=self.taxonomy.source,
            files={k: osp.basename(v) for k, v in paths.items()})
        with open(paths['json'], 'x', encoding='utf-8') as f:
            json.dump(summary, f, indent=2)
        print_log(f'parcel metrics written to {paths["per_level"]}, '
                  f'{paths["per_class"]}, {paths["per_parcel"]} and '
                  f'{paths["json"]}', logger='current')
        return paths

