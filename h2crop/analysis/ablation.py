"""Train and test a set of experiment variants; write paper-style tables.

A variant is an experiment choice written as ``INPUTS[@END_MONTH][:indep]``:

* ``INPUTS``: ``S2``, ``S2+H`` (EnMAP), ``S2+P`` (prior) or ``S2+H+P``;
* ``@END_MONTH``: the month window ends with month 1..12 (default: the
  base config's ``end_month``);
* ``:indep``: independent heads, the paper's ``configs/independent_heads``
  idea -- one model per level, each trained with ``levels=(levelK,)``.

Each model is trained by ``tools/train.py`` and tested by ``tools/test.py``
(the normal Runner, the experiment choices passed as ``--cfg-options``);
the test metric's JSON file is read back. A per-pixel MLP baseline
(:mod:`h2crop.analysis.pixel_baseline`) is trained on the same split for
every input set and window of the variants. The results are written as CSV
and Markdown tables (per-level mFscore, EnMAP gain per level, changed /
unchanged pixels) and a bar plot.

With time budgets (``budgets``, minutes) every variant and its baseline
are instead trained once per budget for as long as the budget allows on
this machine: one calibration epoch measures the model's iteration time
(mmengine's logged ``time``, data loading included) and iterations per
epoch, giving ``max_epochs = max(1, round(budget / epoch time))``
(validated once, at the end); a short calibration fit gives the baseline's
seconds per Adam step and so its steps. The ``budget`` table and
``budget.png`` give scores against the measured training minutes, so
models and baseline are compared at equal wall time.
"""
import csv
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from h2crop.constants import ENMAP, LEVELS, PRIOR, S2
from h2crop.engine.experiment import RESOLVED_KEY, resolve_experiment

#: Variant input names and their modalities.
INPUTS: Dict[str, Tuple[str, ...]] = {
    'S2': (S2, ),
    'S2+H': (S2, ENMAP),
    'S2+P': (S2, PRIOR),
    'S2+H+P': (S2, ENMAP, PRIOR),
}
INDEPENDENT = 'indep'
#: Prefix of the baseline's rows in the tables.
BASELINE_PREFIX = 'MLP '
#: Result key of a model's training wall time.
TRAIN_SECONDS = 'train_seconds'
#: Result keys of what a time budget gave a model / the baseline.
BUDGET_EPOCHS = 'budget_epochs'
BUDGET_STEPS = 'budget_steps'
#: Result key of the baseline's measured seconds per Adam step.
BUDGET_STEP_SECONDS = 'budget_step_seconds'
#: Adam steps of the baseline when no budget gives them.
BASELINE_STEPS = 2000
#: Adam steps of the baseline's step-time calibration.
CALIBRATION_STEPS = 200
_VARIANT_RE = re.compile(r'^(?P<inputs>[A-Z0-9+]+)(@(?P<month>\d+))?'
                         r'(:(?P<heads>[a-z]+))?$')
_REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS_DIR = osp.join(_REPO, 'tools')


@dataclass(frozen=True)
class Variant:
    """One experiment variant.

    Attributes:
        name: As written by the user (row label of the tables).
        modalities: Inputs.
        end_month: Last month of the window, or None for the config's.
        independent: One model per level instead of the cascade.
    """

    name: str
    modalities: Tuple[str, ...]
    end_month: Optional[int] = None
    independent: bool = False

    @property
    def inputs(self) -> str:
        """The input set's name, e.g. ``'S2+H'``."""
        return next(k for k, v in INPUTS.items() if v == self.modalities)

    def with_enmap(self) -> 'Variant':
        """The same variant with EnMAP added to the inputs."""
        mods = tuple(m for m in INPUTS['S2+H+P']
                     if m in self.modalities or m == ENMAP)
        return Variant('', mods, self.end_month, self.independent)



def parse_variant(text: str) -> Variant:
    """Parse ``INPUTS[@END_MONTH][:indep]``; see the module docstring.

    Raises:
        ValueError: Naming the accepted forms.
    """
    m = _VARIANT_RE.match(text.strip())
    if m is None or m['inputs'] not in INPUTS or \
            (m['heads'] not in (None, INDEPENDENT)) or \
            (m['month'] is not None and not 1 <= int(m['month']) <= 12):
        raise ValueError(
            f'variant {text!r}: expected INPUTS[@END_MONTH][:{INDEPENDENT}] '
            f'with INPUTS one of {", ".join(INPUTS)} and END_MONTH 1..12, '
            'e.g. S2+H@6 or S2:indep')
    month = int(m['month']) if m['month'] is not None else None
    return Variant(text.strip(), INPUTS[m['inputs']], month,
                   m['heads'] == INDEPENDENT)


def _load_tool(name: str):
    """The module of ``tools/<name>.py`` (its ``main(argv)``)."""
    spec = importlib.util.spec_from_file_location(
        f'h2crop_tool_{name}', osp.join(TOOLS_DIR, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options(variant: Variant, levels: Sequence[str], data_root: str,
             epochs: Optional[int], extra: Sequence[str]) -> List[str]:
    """``--cfg-options`` items of one model of a variant."""
    def seq(values):
        return '[' + ','.join(f"'{v}'" for v in values) + ']'
    opts = [f'data_root={data_root}',
            f'modalities={seq(variant.modalities)}',
            f'levels={seq(levels)}']
    if variant.end_month is not None:
        opts.append(f'end_month={variant.end_month}')
    if epochs is not None:
        opts.append(f'max_epochs={epochs}')
    return opts + list(extra)


def _checkpoint(work_dir: str) -> str:
    """The best checkpoint of a run, else its last one."""
    best = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')),
                  key=osp.getmtime)
    if best:
        return best[-1]
    with open(osp.join(work_dir, 'last_checkpoint'), encoding='utf-8') as f:
        return f.read().strip()


def class_key(level: str, class_id: int) -> str:
    """Result key of one class's F-score, e.g. ``level4/class/7/Fscore``."""
    return f'{level}/class/{class_id}/Fscore'


def _new_json(work_dir: str, before: set) -> dict:
    """Summary metrics of the new test JSON, plus per-class F-scores.

    The F-score of every class with ground-truth pixels (subset ``all``)
    is read from the per-class CSV the metric wrote next to the JSON.
    """
    found = sorted(set(glob.glob(osp.join(work_dir, 'test_metrics_*.json')))
                   - before, key=osp.getmtime)
    if not found:
        raise RuntimeError(f'{work_dir}: tools/test.py wrote no '
                           'test_metrics_*.json')
    with open(found[-1], encoding='utf-8') as f:
        data = json.load(f)
    metrics = dict(data['metrics'])
    per_class = (data.get('files') or {}).get('per_class')
    if per_class:
        with open(osp.join(osp.dirname(found[-1]), per_class),
                  encoding='utf-8') as f:
            for row in csv.DictReader(f):
                if row['subset'] == 'all' and row['Fscore'] and \
                        int(row['gt_pixels']) > 0:
                    metrics[class_key(row['level'], int(
                        row['class_id']))] = float(row['Fscore'])
    return metrics


def train_and_test(config: str, work_dir: str, options: Sequence[str],
                   overwrite: bool = False) -> Dict[str, float]:
    """Train one model with tools/train.py, test it with tools/test.py.

    Returns:
        The test metric dict (percent) read from the written JSON file.
    """
    train, test = _load_tool('train'), _load_tool('test')
    argv = [config, '--work-dir', work_dir]
    if overwrite:
        argv.append('--overwrite')
    start = time.perf_counter()
    train.main(argv + ['--cfg-options'] + list(options))
    seconds = time.perf_counter() - start
    before = set(glob.glob(osp.join(work_dir, 'test_metrics_*.json')))
    test.main([config, _checkpoint(work_dir), '--work-dir', work_dir,
               '--cfg-options'] + list(options))
    metrics = _new_json(work_dir, before)
    metrics[TRAIN_SECONDS] = round(seconds, 1)
    return metrics


def run_variant(config: str, variant: Variant, work_dir: str,
                data_root: str, epochs: Optional[int] = None,
                extra: Sequence[str] = (),
                overwrite: bool = False) -> Dict[str, float]:
    """Train and test the model(s) of a variant; metrics in percent."""
    if not variant.independent:
        return train_and_test(
            config, work_dir,
            _options(variant, LEVELS, data_root, epochs, extra), overwrite)
    metrics: Dict[str, float] = {}
    for level in LEVELS:
        m = train_and_test(
            config, osp.join(work_dir, level),
            _options(variant, (level, ), data_root, epochs, extra),
            overwrite)
        metrics.update({k: v for k, v in m.items()
                        if k.startswith(level + '/')})
        metrics[TRAIN_SECONDS] = metrics.get(TRAIN_SECONDS, 0.) + \
            m[TRAIN_SECONDS]
    return metrics


def calibrate_epoch(config: str, work_dir: str, options: Sequence[str],
                    overwrite: bool = False) -> Tuple[float, int]:
    """Train one epoch; its median iteration time and iterations.

    The iteration times are those mmengine's ``IterTimerHook`` measured
    (data loading included), read from the run's message hub.

    Returns:
        (seconds per epoch, iterations per epoch): the median iteration
        time (the first iterations, which start the workers, weigh
        nothing) times the iterations of the epoch.

    Raises:
        RuntimeError: If the run recorded no iteration time.
    """
    from mmengine.logging import MessageHub
    train = _load_tool('train')
    argv = [config, '--work-dir', work_dir] + (
        ['--overwrite'] if overwrite else [])
    train.main(argv + ['--cfg-options'] + list(options) + ['max_epochs=1'])
    buf = MessageHub.get_current_instance().log_scalars.get('train/time')
    times = sorted(float(t) for t in buf.data[0]) if buf is not None else []
    if not times:
        raise RuntimeError(f'{work_dir}: the calibration epoch recorded no '
                           'iteration time')
    return times[len(times) // 2] * len(times), len(times)


def budget_epochs(budget_minutes: float, epoch_seconds: float) -> int:
    """Epochs that fill a budget: ``max(1, round(budget / epoch))``."""
    return max(1, int(round(budget_minutes * 60. / epoch_seconds)))


def run_baseline(config: str, variant: Variant, data_root: str,
                 extra: Sequence[str] = (),
                 budget_minutes: Optional[float] = None,
                 **kwargs) -> Dict[str, float]:
    """Train and test the per-pixel baseline of a variant's inputs.

    With ``budget_minutes`` the Adam steps fill the budget: a fit of
    :data:`CALIBRATION_STEPS` steps (pixel sampling included) measures the
    seconds per step.
    """
    from .pixel_baseline import baseline_from_cfg
    cfg = Config.fromfile(config)
    cfg.data_root = data_root
    cfg.modalities = variant.modalities
    if variant.end_month is not None:
        cfg.end_month = variant.end_month
    cfg.merge_from_dict(_parse_extra(extra))
    cfg = resolve_experiment(cfg)
    month = cfg[RESOLVED_KEY]['end_month']
    extra_keys: Dict[str, float] = {}
    if budget_minutes is not None:
        kwargs = dict(kwargs, steps=CALIBRATION_STEPS)
        probe = baseline_from_cfg(cfg, variant.modalities, month, **kwargs)
        start = time.perf_counter()
        probe.fit()
        per_step = (time.perf_counter() - start) / CALIBRATION_STEPS
        kwargs['steps'] = max(CALIBRATION_STEPS,
                              int(budget_minutes * 60. / per_step))
        extra_keys[BUDGET_STEPS] = kwargs['steps']
        extra_keys[BUDGET_STEP_SECONDS] = per_step
    model = baseline_from_cfg(cfg, variant.modalities, month, **kwargs)
    start = time.perf_counter()
    model.fit()
    seconds = time.perf_counter() - start
    return dict(model.evaluate(), **{TRAIN_SECONDS: round(seconds, 1)},
                **extra_keys)


def _parse_extra(extra: Sequence[str]) -> dict:
    """``KEY=VALUE`` items as mmengine's ``--cfg-options`` parses them."""
    import argparse

    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction, default={})
    return parser.parse_args(['--o'] + list(extra)).o if extra else {}


# ---------------------------------------------------------------- tables


def refuse_earlier_run(results_file: str, what: str,
                       overwrite: bool) -> None:
    """Refuse to replace an earlier run's results without ``overwrite``.

    Raises:
        FileExistsError: If ``results_file`` exists and ``overwrite`` is
            not set (naming its folder and ``--overwrite``).
    """
    if osp.exists(results_file) and not overwrite:
        raise FileExistsError(
            f'{osp.dirname(results_file)} holds an earlier {what} '
            f'({results_file}); pass --overwrite to replace it or choose '
            'another --work-dir')


def _fmt(value: Optional[float]) -> str:
    return '' if value is None else f'{value:.2f}'


def _write(out_dir: str, stem: str, header: List[str],
           rows: List[List[str]]) -> Dict[str, str]:
    """Write a table as ``<stem>.csv`` and ``<stem>.md``."""
    paths = dict(csv=osp.join(out_dir, stem + '.csv'),
                 md=osp.join(out_dir, stem + '.md'))
    with open(paths['csv'], 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    with open(paths['md'], 'w', encoding='utf-8') as f:
        f.write('| ' + ' | '.join(header) + ' |\n')
        f.write('|' + '---|' * len(header) + '\n')
        for row in rows:
            f.write('| ' + ' | '.join(row) + ' |\n')
    return paths


def _mean_class_f(metrics: Dict[str, float],
                  class_ids: Sequence[int]) -> Optional[float]:
    """Mean level-4 F-score over the classes with test pixels."""
    vals = [metrics[class_key(LEVELS[-1], c)] for c in class_ids
            if class_key(LEVELS[-1], c) in metrics]
    return sum(vals) / len(vals) if vals else None


def synthetic_twins(data_root: str) -> List[Tuple[int, int]]:
    """(EnMAP-only class, its S2 twin) pairs of a synthetic dataset.

    Read from ``<data_root>/synthetic_info.json``; empty for other data.
    """
    from h2crop.datasets.synthetic import INFO_FILE
    path = osp.join(data_root, INFO_FILE)
    if not osp.isfile(path):
        return []
    with open(path, encoding='utf-8') as f:
        return [(int(c), int(t)) for c, t in json.load(f).get('twins', [])]


def write_tables(results: Dict[str, Dict[str, float]],
                 variants: Sequence[Variant],
                 baselines: Dict[tuple, Dict[str, float]],
                 out_dir: str,
                 twins: Sequence[Tuple[int, int]] = ()) -> Dict[str, str]:
    """Per-level mFscore, EnMAP gain, changed / unchanged, EnMAP-only.

    Args:
        results: Metric dict (percent) per variant name.
        variants: The variants, in table order.
        baselines: Baseline metric dict per ``(modalities, end_month)``.
        out_dir: Folder of the files.
        twins: (EnMAP-only class, its S2 twin) pairs of level 4 (a
            synthetic dataset's); with them, the ``enmap_only_classes``
            table gives each variant's mean F-score over both groups.

    Returns:
        Written paths by ``<table>_<csv|md>`` and ``plot``.
    """
    os.makedirs(out_dir, exist_ok=True)
    rows: List[Tuple[str, Variant, Dict[str, float]]] = []
    for v in variants:
        rows.append((v.name, v, results[v.name]))
    for v in variants:
        b = baselines.get((v.modalities, v.end_month))
        name = BASELINE_PREFIX + v.inputs + (
            f'@{v.end_month}' if v.end_month else '')
        if b is not None and all(r[0] != name for r in rows):
            rows.append((name, Variant(name, v.modalities, v.end_month), b))
    paths: Dict[str, str] = {}

    def level_values(m, infix=''):
        return [m.get(f'{lv}/{infix}mFscore') for lv in LEVELS]

    header = ['variant'] + [f'{lv} mFscore' for lv in LEVELS] + [
        'mean', 'train min']
    table = []
    for name, _, m in rows:
        vals = level_values(m)
        known = [x for x in vals if x is not None]
        mean = sum(known) / len(known) if known else None
        minutes = m.get(TRAIN_SECONDS)
        table.append([name] + [_fmt(x) for x in vals] + [_fmt(mean)] + [
            '' if minutes is None else f'{minutes / 60:.1f}'])
    for k, p in _write(out_dir, 'per_level', header, table).items():
        paths[f'per_level_{k}'] = p

    by_key = {(v.modalities, v.end_month, v.independent, n.startswith(
        BASELINE_PREFIX)): (n, m) for n, v, m in rows}
    gain = []
    for (mods, month, indep, base), (name, m) in by_key.items():
        if ENMAP in mods:
            continue
        with_h = Variant('', mods, month, indep).with_enmap()
        other = by_key.get((with_h.modalities, month, indep, base))
        if other is None:
            continue
        vals = [None if a is None or b is None else b - a for a, b in
                zip(level_values(m), level_values(other[1]))]
        gain.append([f'{other[0]} vs {name}'] + [_fmt(x) for x in vals])
    for k, p in _write(out_dir, 'enmap_gain',
                       ['comparison'] + [f'{lv} gain' for lv in LEVELS],
                       gain).items():
        paths[f'enmap_gain_{k}'] = p

    header = ['variant'] + [f'{lv} {s}' for lv in LEVELS
                            for s in ('changed', 'unchanged')]
    table = [[name] + [_fmt(m.get(f'{lv}/{s}/mFscore')) for lv in LEVELS
                       for s in ('changed', 'unchanged')]
             for name, _, m in rows]
    for k, p in _write(out_dir, 'changed_unchanged', header, table).items():
        paths[f'changed_unchanged_{k}'] = p
    if twins:
        header = ['variant', 'EnMAP-only classes F', 'their S2 twins F',
                  'level4 mFscore']
        table = []
        for name, _, m in rows:
            table.append([name] + [_fmt(_mean_class_f(m, ids)) for ids in (
                [c for c, _ in twins], [t for _, t in twins])] + [
                    _fmt(m.get(f'{LEVELS[-1]}/mFscore'))])
        for k, p in _write(out_dir, 'enmap_only_classes', header,
                           table).items():
            paths[f'enmap_only_classes_{k}'] = p
    paths['plot'] = plot_levels(
        {name: level_values(m) for name, _, m in rows},
        osp.join(out_dir, 'per_level.png'))
    return paths


def plot_levels(values: Dict[str, List[Optional[float]]],
                path: str) -> str:
    """Grouped bars of per-level mFscore per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(values))
    for i, (name, vals) in enumerate(values.items()):
        xs = [k + i * width for k in range(len(LEVELS))]
        ax.bar(xs, [v if v is not None else 0.0 for v in vals], width,
               label=name)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(LEVELS))])
    ax.set_xticklabels(LEVELS)
    ax.set_ylabel('mFscore (%)')
    ax.legend(fontsize='small', ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_ablation(config: str, variants: Sequence[str], data_root: str,
                 work_dir: str, epochs: Optional[int] = None,
                 baseline: bool = True, baseline_steps: int = BASELINE_STEPS,
                 extra: Sequence[str] = (),
                 overwrite: bool = False) -> Dict[str, str]:
    """Train, test and tabulate every variant (and the pixel baseline).

    Args:
        config: Base config.
        variants: Variant strings (see :func:`parse_variant`).
        data_root: Dataset folder (the ``data_root`` choice).
        work_dir: One sub-folder per variant; tables written here.
        epochs: ``max_epochs`` of every model (None: the config's).
        baseline: Also train the per-pixel baseline.
        baseline_steps: Adam steps of the baseline.
        extra: Further ``KEY=VALUE`` config options for every model.
        overwrite: Replace an earlier ablation in ``work_dir`` (its
            checkpoints and tables); without it an earlier one is refused.

    Returns:
        Written table and plot paths.

    Raises:
        FileExistsError: If ``work_dir`` holds an earlier ablation and
            ``overwrite`` is not set.
    """
    results_file = osp.join(work_dir, 'results.json')
    refuse_earlier_run(results_file, 'ablation', overwrite)
    parsed = [parse_variant(v) for v in variants]
    names = [v.name for v in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f'variants {names}: a variant is listed twice')
    results: Dict[str, Dict[str, float]] = {}
    baselines: Dict[tuple, Dict[str, float]] = {}
    for v in parsed:
        folder = osp.join(work_dir, _slug(v.name))
        print_log(f'ablation: variant {v.name} in {folder}',
                  logger='current')
        results[v.name] = run_variant(config, v, folder, data_root, epochs,
                                      extra, overwrite)
        key = (v.modalities, v.end_month)
        if baseline and key not in baselines:
            baselines[key] = run_baseline(config, v, data_root, extra,
                                          steps=baseline_steps)
    with open(results_file, 'w', encoding='utf-8') as f:
        json.dump(dict(variants=results,
                       baselines={f'{BASELINE_PREFIX}{"+".join(k[0])}'
                                  f'@{k[1]}': m
                                  for k, m in baselines.items()}), f,
                  indent=2)
    return write_tables(results, parsed, baselines, work_dir,
                        synthetic_twins(data_root))


def _slug(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9]+', '_', name)


def _budget_options(epochs: int) -> List[str]:
    """Train ``epochs`` epochs, validating and saving once, at the end."""
    return [f'max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}']


def run_budgets(config: str, variants: Sequence[str], data_root: str,
                work_dir: str, budgets: Sequence[float],
                baseline: bool = True, extra: Sequence[str] = (),
                overwrite: bool = False) -> Dict[str, str]:
    """Scores at equal wall time: every variant and baseline per budget.

    Args:
        config: Base config.
        variants: Variant strings (no ``:indep``).
        data_root: Dataset folder.
        work_dir: ``<variant>/calibration`` and ``<variant>/<B>min``
            sub-folders; ``budget.{csv,md,png}`` and ``budget_results.json``.
        budgets: Training budgets in minutes.
        baseline: Also train the per-pixel baseline at every budget.
        extra: Further ``KEY=VALUE`` config options for every model.
        overwrite: Replace an earlier run in ``work_dir``.

    Returns:
        Written table and plot paths (``budget_csv``, ``budget_md``,
        ``budget_plot``).

    Raises:
        ValueError: On a non-positive budget or an ``:indep`` variant.
        FileExistsError: If ``work_dir`` holds an earlier run and
            ``overwrite`` is not set.
    """
    results_file = osp.join(work_dir, 'budget_results.json')
    refuse_earlier_run(results_file, 'budget run', overwrite)
    minutes = sorted({float(b) for b in budgets})
    if not minutes or minutes[0] <= 0:
        raise ValueError(f'--budget-minutes {list(budgets)}: expected '
                         'positive minutes')
    parsed = [parse_variant(v) for v in variants]
    if any(v.independent for v in parsed):
        raise ValueError(f':{INDEPENDENT} variants train one model per '
                         'level; give budgets to cascade variants only')
    rows: List[dict] = []
    for v in parsed:
        folder = osp.join(work_dir, _slug(v.name))
        opts = _options(v, LEVELS, data_root, None, extra)
        start = time.perf_counter()
        epoch_s, iters = calibrate_epoch(
            config, osp.join(folder, 'calibration'), opts, overwrite)
        # the epochs below come from the value recorded, so the results
        # file reproduces them (an unrounded time could round differently)
        epoch_s = max(round(epoch_s, 3), 0.001)
        calibration = dict(epoch_seconds=epoch_s,
                           iters_per_epoch=iters,
                           wall_seconds=round(time.perf_counter() - start, 1))
        print_log(f'budget: {v.name}: {epoch_s:.1f} s per epoch of {iters} '
                  'iterations', logger='current')
        for b in minutes:
            epochs = budget_epochs(b, epoch_s)
            m = train_and_test(config, osp.join(folder, f'{b:g}min'),
                               opts + _budget_options(epochs), overwrite)
            m[BUDGET_EPOCHS] = epochs
            rows.append(dict(name=v.name, budget=b, metrics=m,
                             calibration=calibration))
        if baseline:
            name = BASELINE_PREFIX + v.inputs + (
                f'@{v.end_month}' if v.end_month else '')
            if any(r['name'] == name for r in rows):
                continue
            for b in minutes:
                m = run_baseline(config, v, data_root, extra,
                                 budget_minutes=b)
                rows.append(dict(name=name, budget=b, metrics=m))
    os.makedirs(work_dir, exist_ok=True)
    with open(results_file, 'w', encoding='utf-8') as f:
        json.dump(rows, f, indent=2)
    return write_budget_table(rows, work_dir)


def write_budget_table(rows: Sequence[dict],
                       out_dir: str) -> Dict[str, str]:
    """``budget`` table (one row per variant and budget) and its plot."""
    header = ['variant', 'budget min', 'epochs / steps', 'train min'] + [
        f'{lv} mFscore' for lv in LEVELS] + ['mean']
    table, curves = [], {}
    for r in rows:
        m = r['metrics']
        vals = [m.get(f'{lv}/mFscore') for lv in LEVELS]
        known = [x for x in vals if x is not None]
        mean = sum(known) / len(known) if known else None
        length = m.get(BUDGET_EPOCHS, m.get(BUDGET_STEPS))
        table.append([r['name'], f'{r["budget"]:g}',
                      '' if length is None else str(length),
                      f'{m[TRAIN_SECONDS] / 60:.1f}'] +
                     [_fmt(x) for x in vals] + [_fmt(mean)])
        curves.setdefault(r['name'], []).append(
            (m[TRAIN_SECONDS] / 60, mean, m.get(f'{LEVELS[-1]}/mFscore')))
    paths = {f'budget_{k}': p
             for k, p in _write(out_dir, 'budget', header, table).items()}
    paths['budget_plot'] = plot_budget(curves,
                                       osp.join(out_dir, 'budget.png'))
    return paths


def plot_budget(curves: Dict[str, List[tuple]], path: str) -> str:
    """Mean and level-4 mFscore against training minutes, per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for name, points in curves.items():
        points = sorted(points)
        style = '--' if name.startswith(BASELINE_PREFIX) else '-'
        for ax, k in zip(axes, (1, 2)):
            ax.plot([p[0] for p in points],
                    [p[k] if p[k] is not None else float('nan')
                     for p in points], style, marker='o', label=name)
    for ax, what in zip(axes, ('mean mFscore (%)', 'level4 mFscore (%)')):
        ax.set_xlabel('training minutes (measured)')
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
