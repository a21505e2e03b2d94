"""Accuracy against the window's end month, for one any-window checkpoint.

An any-window model (``model.any_window``, see
:mod:`h2crop.models.segmentors.any_window`) is trained once and then tested
at every end month and input subset without being rebuilt.
:func:`any_window_curve` trains it with ``tools/train.py`` (or takes a given
checkpoint), tests that single checkpoint with ``tools/test.py`` (in
process) at every ``end_month`` x input subset -- the choices passed as
``--cfg-options``, so the dataloaders read exactly those months and
modalities -- and writes into the work dir:

* ``curve_mFscore.{csv,md}``: mean over the levels of each level's
  mFscore, rows input subsets, columns end months;
* ``curve_<level>.{csv,md}``: the same for the deepest evaluated level's
  mFscore (``level4`` for the full taxonomy);
* ``curve.png``: both as lines over the end month, one line per subset;
* ``curve.json``: every test metric per subset and month.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from h2crop.constants import NUM_MONTHS
from h2crop.engine.experiment import RESOLVED_KEY, resolve_experiment

from .ablation import (
    INPUTS,
    _checkpoint,
    _fmt,
    _load_tool,
    _new_json,
    _parse_extra,
    _write,
    refuse_earlier_run,
)

#: Default input subsets of the curve (names of :data:`INPUTS`).
CURVE_INPUTS = tuple(INPUTS)
#: Default end months of the curve.
CURVE_MONTHS = tuple(range(1, NUM_MONTHS + 1))
#: Results file; its presence marks an earlier curve in a work dir.
RESULTS_FILE = 'curve.json'


def _seq(values: Sequence[str]) -> str:
    return '[' + ','.join(f"'{v}'" for v in values) + ']'


def _check_config(config: str, data_root: Optional[str],
                  extra: Sequence[str]) -> Config:
    """Load and resolve the config; refuse one without ``any_window``."""
    cfg = Config.fromfile(config)
    if data_root is not None:
        cfg.data_root = data_root
    cfg.merge_from_dict(_parse_extra(extra))
    cfg = resolve_experiment(cfg)
    if cfg.model.get('any_window') is None:
        raise ValueError(
            f'{config}: model.any_window is not set; the curve tests one '
            'any-window model at every end month (e.g. '
            'configs/any_window/h2crop_demo_any_window.py)')
    return cfg


def _check_choices(months: Sequence[int], inputs: Sequence[str],
                   num_frames: int, modalities: Sequence[str]) -> None:
    bad = [m for m in months if isinstance(m, bool) or
           not isinstance(m, int) or not 1 <= m <= num_frames]
    if not months or bad:
        raise ValueError(f'curve months {list(months)}: expected months '
                         f'1..{num_frames} (the model\'s model.num_frames)')
    for name in inputs:
        if name not in INPUTS:
            raise ValueError(f'curve input {name!r}: expected one of '
                             f'{", ".join(INPUTS)}')
        extra = [m for m in INPUTS[name] if m not in modalities]
        if extra:
            raise ValueError(f'curve input {name!r} needs {extra}, which '
                             f'the model lacks (model.modalities='
                             f'{tuple(modalities)})')
    for what, values in (('months', months), ('inputs', inputs)):
        if len(set(values)) != len(values):
            raise ValueError(f'curve {what} {list(values)}: a value is '
                             'listed twice')


def evaluate_grid(config: str, checkpoint: str, work_dir: str,
                  months: Sequence[int], inputs: Sequence[str],
                  data_root: Optional[str] = None,
                  extra: Sequence[str] = ()
                  ) -> Dict[str, Dict[int, Dict[str, float]]]:
    """Test one checkpoint at every end month x input subset.

    Each test runs ``tools/test.py`` in process with ``end_month`` and
    ``modalities`` as ``--cfg-options`` (the data pre-flight check runs for
    the first test only) and writes its metric files into
    ``<work_dir>/<inputs>_m<month>/``.

    Returns:
        Test metrics (percent) by input name and end month.
    """
    test = _load_tool('test')
    base = [f'data_root={data_root}'] if data_root is not None else []
    results: Dict[str, Dict[int, Dict[str, float]]] = {}
    first = True
    for name in inputs:
        results[name] = {}
        for month in months:
            folder = osp.join(work_dir,
                              f'{name.replace("+", "_")}_m{month:02d}')
            options = base + [f'end_month={month}',
                              f'modalities={_seq(INPUTS[name])}']
            argv = [config, checkpoint, '--work-dir', folder]
            if not first:
                argv.append('--skip-preflight')
            print_log(f'any-window curve: {name}, end month {month}',
                      logger='current')
            before = set()
            if osp.isdir(folder):
                before = {osp.join(folder, f) for f in os.listdir(folder)}
            test.main(argv + ['--cfg-options'] + options + list(extra))
            results[name][month] = _new_json(folder, before)
            first = False
    return results


def write_curve(results: Dict[str, Dict[int, Dict[str, float]]],
                months: Sequence[int], level: str,
                out_dir: str) -> Dict[str, str]:
    """Tables (mean mFscore; ``level`` mFscore) and the line plot.

    Returns:
        Written paths by ``<table>_<csv|md>`` and ``plot``.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths: Dict[str, str] = {}
    header = ['inputs'] + [f'M{m}' for m in months]
    series: Dict[str, Dict[str, List[Optional[float]]]] = {}
    for stem, key in (('curve_mFscore', 'mFscore'),
                      (f'curve_{level}', f'{level}/mFscore')):
        values = {name: [per_month[m].get(key) for m in months]
                  for name, per_month in results.items()}
        series[key] = values
        rows = [[name] + [_fmt(v) for v in vals]
                for name, vals in values.items()]
        for kind, path in _write(out_dir, stem, header, rows).items():
            paths[f'{stem}_{kind}'] = path
    paths['plot'] = plot_curve(series, months, osp.join(out_dir,
                                                        'curve.png'))
    return paths


def plot_curve(series: Dict[str, Dict[str, List[Optional[float]]]],
               months: Sequence[int], path: str) -> str:
    """One panel per metric, one line per input subset over the month."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.6),
                             squeeze=False)
    for ax, (metric, values) in zip(axes[0], series.items()):
        for name, vals in values.items():
            ax.plot(list(months),
                    [float('nan') if v is None else v for v in vals],
                    marker='o', label=name)
        ax.set_xlabel('end month of the window')
        ax.set_ylabel(f'{metric.replace("/", " ")} (%)')
        ax.set_xticks(list(months))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def any_window_curve(config: str, work_dir: str,
                     checkpoint: Optional[str] = None,
                     data_root: Optional[str] = None,
                     months: Sequence[int] = CURVE_MONTHS,
                     inputs: Sequence[str] = CURVE_INPUTS,
                     epochs: Optional[int] = None,
                     extra: Sequence[str] = (),
                     overwrite: bool = False) -> Dict[str, str]:
    """Train (or take) one any-window model; test it at every window.

    Args:
        config: An any-window config (``model.any_window`` set).
        work_dir: Training run in ``train/``, one folder per test, the
            tables and the plot here.
        checkpoint: Weights to test; None trains the config first
            (``tools/train.py``, its best checkpoint is tested).
        data_root: Dataset folder (the ``data_root`` choice); None: the
            config's.
        months: End months of the curve.
        inputs: Input subsets (``S2``, ``S2+H``, ``S2+P``, ``S2+H+P``).
        epochs: ``max_epochs`` of the training (None: the config's).
        extra: Further ``KEY=VALUE`` config options (training and tests).
        overwrite: Replace an earlier curve (and training) in ``work_dir``.

    Returns:
        Written table and plot paths (``curve_mFscore_csv``, ...).

    Raises:
        FileExistsError: If ``work_dir`` holds an earlier curve and
            ``overwrite`` is not set.
        ValueError: If the config is no any-window config, or months /
            inputs are outside what the model takes.
    """
    results_file = osp.join(work_dir, RESULTS_FILE)
    refuse_earlier_run(results_file, 'curve', overwrite)
    months, inputs = list(months), list(inputs)
    cfg = _check_config(config, data_root, extra)
    _check_choices(months, inputs, cfg.model.num_frames,
                   cfg.model.modalities)
    if checkpoint is None:
        train_dir = osp.join(work_dir, 'train')
        argv = [config, '--work-dir', train_dir]
        if overwrite:
            argv.append('--overwrite')
        options = [f'data_root={data_root}'] if data_root is not None else []
        if epochs is not None:
            options.append(f'max_epochs={epochs}')
        _load_tool('train').main(argv + ['--cfg-options'] + options +
                                 list(extra))
        checkpoint = _checkpoint(train_dir)
    elif not osp.isfile(checkpoint):
        raise ValueError(f'checkpoint {checkpoint}: no such file')
    results = evaluate_grid(config, checkpoint, work_dir, months, inputs,
                            data_root, extra)
    level = cfg[RESOLVED_KEY]['levels'][-1]
    paths = write_curve(results, months, level, work_dir)
    with open(results_file, 'w', encoding='utf-8') as f:
        json.dump(dict(checkpoint=checkpoint, months=months, inputs=inputs,
                       metrics={name: {str(m): v for m, v in per.items()}
                                for name, per in results.items()}),
                  f, indent=2)
    paths['results'] = results_file
    return paths
