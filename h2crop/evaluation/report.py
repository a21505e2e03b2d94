"""Human- and machine-readable reports of the hierarchical metric.

Log tables (per class and per level) and the CSV / JSON files written next
to a run. Files are never overwritten: a free ``_<n>`` stem is chosen and
files are opened in exclusive-create mode.
"""
import csv
import json
import math
import os.path as osp
import time
from typing import Callable, Dict, Optional, Sequence

from mmengine.logging import print_log
from mmengine.utils import mkdir_or_exist
from prettytable import PrettyTable

from .functional import (
    ALL,
    CLASS_METRICS,
    GT,
    HIERARCHY_KEY,
    INTERSECT,
    PRED,
    SUMMARY_METRICS,
    percent,
    subset_key,
)

#: Suffixes of the files of one report.
REPORT_SUFFIXES = ('_per_class.csv', '_per_level.csv', '.json')

#: ``tables[subset][level]`` holds ``per_class`` (dict of arrays (C,)),
#: ``summary`` (dict of floats) and ``counts`` (int64 (3, C)).
Tables = Dict[str, Dict[str, dict]]


def log_report(levels: Sequence[str],
               tables: Tables,
               metrics: Dict[str, float],
               class_names: Callable[[str], Sequence[str]],
               first: int,
               log_per_class: bool = True,
               background_excluded: bool = False,
               hierarchy_reason: Optional[str] = None) -> None:
    """Log per-class tables, per-level tables and hierarchy consistency.

    Args:
        levels: Evaluated level names.
        tables: Per subset and level, the per-class values, summaries and
            counts (classes from id ``first`` on).
        metrics: The metric dict (values in percent).
        class_names: Level name -> names of the classes from id ``first``.
        first: Id of the first class in the tables (1 when background is
            excluded).
        log_per_class: Log the per-class table (all pixels) of each level.
        background_excluded: Say so in the table titles.
        hierarchy_reason: Why hierarchy consistency is missing, if it is.
    """
    bg = ' (background excluded)' if background_excluded else ''
    if log_per_class:
        for level in levels:
            entry = tables[ALL][level]
            names = list(class_names(level))
            table = PrettyTable()
            table.add_column('Id', list(range(first, first + len(names))))
            table.add_column('Class', names)
            for name in ('IoU', 'Fscore', 'Precision', 'Recall'):
                table.add_column(
                    name, [percent(v) for v in entry['per_class'][name]])
            table.add_column('GT px', entry['counts'][GT].tolist())
            table.add_column('Pred px', entry['counts'][PRED].tolist())
            print_log(f'{level} per-class results{bg}:\n'
                      f'{table.get_string()}', logger='current')
    for subset in tables:
        key = subset_key(subset)
        table = PrettyTable()
        table.field_names = ['Level'] + list(SUMMARY_METRICS)
        for level in levels:
            table.add_row([level] +
                          [metrics[f'{level}/{key}{n}']
                           for n in SUMMARY_METRICS])
        print_log(f'per-level results, {subset} pixels{bg}:\n'
                  f'{table.get_string()}\n'
                  f'mean over levels: mFscore {metrics[key + "mFscore"]}, '
                  f'mIoU {metrics[key + "mIoU"]}', logger='current')
    if HIERARCHY_KEY in metrics:
        print_log(f'hierarchy consistency of the predictions: '
                  f'{metrics[HIERARCHY_KEY]} % of pixels', logger='current')
    else:
        print_log(f'hierarchy consistency not computed: {hierarchy_reason}',
                  logger='current')


def free_stem(output_dir: str,
              file_prefix: str,
              suffixes: Sequence[str] = REPORT_SUFFIXES) -> str:
    """A stem ``<prefix>_<timestamp>[_<n>]`` none of whose files exist.

    Args:
        output_dir: Folder of the files.
        file_prefix: Stem prefix.
        suffixes: Suffixes of the files that will be written with the stem.
    """
    stem = f'{file_prefix}_{time.strftime("%Y%m%d_%H%M%S")}'
    candidate, n = stem, 0
    while any(
            osp.exists(osp.join(output_dir, candidate + suffix))
            for suffix in suffixes):
        n += 1
        candidate = f'{stem}_{n}'
    return candidate


def _cell(value: float) -> str:
    return '' if math.isnan(value) else f'{value:.2f}'


def write_report(output_dir: str,
                 file_prefix: str,
                 levels: Sequence[str],
                 tables: Tables,
                 metrics: Dict[str, float],
                 class_names: Callable[[str], Sequence[str]],
                 first: int,
                 summary: Optional[dict] = None) -> Dict[str, str]:
    """Write the per-class CSV, the per-level CSV and a JSON summary.

    Args:
        output_dir: Folder of the files (created when missing).
        file_prefix: Stem prefix; see :func:`free_stem`.
        levels: Evaluated level names.
        tables: See :func:`log_report`.
        metrics: The metric dict (values in percent).
        class_names: Level name -> names of the classes from id ``first``.
        first: Id of the first class in the tables.
        summary: Extra entries of the JSON file (settings of the metric).

    Returns:
        The written paths by kind (``per_class``, ``per_level``, ``json``).
    """
    mkdir_or_exist(output_dir)
    stem = osp.join(output_dir, free_stem(output_dir, file_prefix))
    paths = dict(per_class=stem + REPORT_SUFFIXES[0],
                 per_level=stem + REPORT_SUFFIXES[1],
                 json=stem + REPORT_SUFFIXES[2])
    # mode 'x': fail rather than overwrite a file created meanwhile
    with open(paths['per_class'], 'x', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['subset', 'level', 'class_id', 'class_name'] +
                        list(CLASS_METRICS) +
                        ['intersect', 'union', 'pred_pixels', 'gt_pixels'])
        for subset, per_level in tables.items():
            for level in levels:
                entry = per_level[level]
                c = entry['counts']
                union = c[PRED] + c[GT] - c[INTERSECT]
                for j, name in enumerate(class_names(level)):
                    writer.writerow(
                        [subset, level, first + j, name] +
                        [_cell(percent(entry['per_class'][m][j]))
                         for m in CLASS_METRICS] +
                        [int(c[INTERSECT][j]), int(union[j]),
                         int(c[PRED][j]), int(c[GT][j])])
    with open(paths['per_level'], 'x', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['subset', 'level'] + list(SUMMARY_METRICS))
        for subset in tables:
            key = subset_key(subset)
            for level in levels:
                writer.writerow([subset, level] + [
                    _cell(metrics[f'{level}/{key}{n}'])
                    for n in SUMMARY_METRICS
                ])
    content = dict(
        metrics={k: (None if math.isnan(v) else v)
                 for k, v in metrics.items()},
        levels=list(levels),
        subsets=list(tables))
    content.update(summary or {})
    content['units'] = 'percent, rounded to 2 decimals'
    content['files'] = {k: osp.basename(v) for k, v in paths.items()}
    with open(paths['json'], 'x', encoding='utf-8') as f:
        json.dump(content, f, indent=2)
    print_log(f'metrics written to {paths["per_class"]}, '
              f'{paths["per_level"]} and {paths["json"]}', logger='current')
    return paths
