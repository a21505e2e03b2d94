r"""Train and test experiment variants; write paper-style tables and a plot.

Variants are ``INPUTS[@END_MONTH][:indep]`` with INPUTS one of ``S2``,
``S2+H``, ``S2+P``, ``S2+H+P`` (``@6``: January-June window; ``:indep``:
one model per level). A per-pixel MLP baseline is trained on the same split
for each input set and window.

Examples::

    python tools/analysis_tools/run_ablation.py \
        configs/demo/h2crop_demo_s2_h_p.py --data-root data/demo \
        --variants S2 S2+H S2+P S2+H+P S2:indep --epochs 12 \
        --work-dir work_dirs/ablation

With ``--budget-minutes 5 10 20`` every variant and its baseline are
trained once per budget for as long as it allows on this machine (epochs
from one calibration epoch, baseline steps from a short calibration fit),
writing the ``budget`` table and ``budget.png`` (scores against measured
training minutes)::

    python tools/analysis_tools/run_ablation.py \
        configs/demo/h2crop_demo_s2_h_p.py --data-root data/demo \
        --variants S2 S2+H --budget-minutes 5 10 20 \
        --work-dir work_dirs/budget

With ``--any-window-curve [CHECKPOINT]`` the tool instead trains the given
any-window config once (or takes CHECKPOINT) and tests that one model at
every end month x input subset (``--curve-months``, ``--curve-inputs``),
writing ``curve_mFscore``, ``curve_level4`` tables (rows input subsets,
columns end months) and ``curve.png``::

    python tools/analysis_tools/run_ablation.py \
        configs/any_window/h2crop_demo_any_window.py --data-root data/demo \
        --any-window-curve --epochs 12 --work-dir work_dirs/any_window_curve
"""
import argparse
import os.path as osp
import sys
from typing import Dict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from h2crop.analysis.ablation import (  # noqa: E402
    BASELINE_STEPS,
    run_ablation,
    run_budgets,
)
from h2crop.analysis.any_window import (  # noqa: E402
    CURVE_INPUTS,
    CURVE_MONTHS,
    any_window_curve,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='base config')
    parser.add_argument('--data-root', required=True,
                        help='dataset folder (holding h5_data/)')
    parser.add_argument('--variants', nargs='+',
                        help='INPUTS[@END_MONTH][:indep] items, e.g. S2 '
                        'S2+H S2+H@6 S2:indep')
    parser.add_argument('--any-window-curve', nargs='?', const='',
                        metavar='CHECKPOINT',
                        help='instead of variants: train the any-window '
                        'config once (or test CHECKPOINT) and test it at '
                        'every --curve-months x --curve-inputs')
    parser.add_argument('--curve-months', nargs='+', type=int,
                        default=list(CURVE_MONTHS),
                        help='end months of the curve (default 1..12)')
    parser.add_argument('--curve-inputs', nargs='+',
                        default=list(CURVE_INPUTS),
                        help='input subsets of the curve (default: '
                        f'{" ".join(CURVE_INPUTS)})')
    parser.add_argument('--epochs', type=int,
                        help='max_epochs of every model (default: the '
                        "config's)")
    parser.add_argument('--budget-minutes', nargs='+', type=float,
                        metavar='MIN',
                        help='instead of --epochs: train every variant and '
                        'its baseline once per budget, as long as the '
                        'budget allows on this machine (one calibration '
                        'epoch first), and write the budget table and '
                        'curve (default: off)')
    parser.add_argument('--work-dir', default='work_dirs/ablation',
                        help='one sub-folder per variant; tables here '
                        '(default: %(default)s)')
    parser.add_argument('--no-baseline', action='store_true',
                        help='skip the per-pixel MLP baseline')
    parser.add_argument('--baseline-steps', type=int, default=None,
                        help='Adam steps of the per-pixel baseline '
                        f'(default: {BASELINE_STEPS}; not with '
                        '--budget-minutes, which gives the steps, or '
                        '--any-window-curve, which trains no baseline)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier ablation in --work-dir')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='further config options for every model '
                        '(default: none)')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.baseline_steps is not None and (
            args.budget_minutes or args.any_window_curve is not None):
        raise SystemExit('error: --baseline-steps changes nothing with '
                         '--budget-minutes (the budget gives the steps) or '
                         '--any-window-curve (no baseline); leave it out')
    if args.any_window_curve is not None:
        if args.variants:
            raise SystemExit('error: --variants and --any-window-curve '
                             'exclude each other')
        try:
            paths = any_window_curve(
                args.config, args.work_dir,
                checkpoint=args.any_window_curve or None,
                data_root=args.data_root, months=args.curve_months,
                inputs=args.curve_inputs, epochs=args.epochs,
                extra=args.cfg_options, overwrite=args.overwrite)
        except (ValueError, FileExistsError) as err:
            raise SystemExit(f'error: {err}') from err
        _report(paths, 'curve_mFscore_md')
        return
    if not args.variants:
        raise SystemExit('error: give --variants (or --any-window-curve)')
    if args.budget_minutes:
        if args.epochs is not None:
            raise SystemExit('error: --budget-minutes sets the epochs of '
                             'every model; leave --epochs out')
        try:
            paths = run_budgets(
                args.config, args.variants, args.data_root, args.work_dir,
                args.budget_minutes, baseline=not args.no_baseline,
                extra=args.cfg_options, overwrite=args.overwrite)
        except (ValueError, FileExistsError) as err:
            raise SystemExit(f'error: {err}') from err
        _report(paths, 'budget_md')
        return
    try:
        paths = run_ablation(
            args.config, args.variants, args.data_root, args.work_dir,
            epochs=args.epochs, baseline=not args.no_baseline,
            baseline_steps=(BASELINE_STEPS if args.baseline_steps is None
                            else args.baseline_steps),
            extra=args.cfg_options,
            overwrite=args.overwrite)
    except (ValueError, FileExistsError) as err:
        raise SystemExit(f'error: {err}') from err
    _report(paths, 'per_level_md')


def _report(paths: Dict[str, str], table: str) -> None:
    """Print the main Markdown table and the written paths."""
    with open(paths[table], encoding='utf-8') as f:
        print(f.read())
    print('\n'.join(f'{k}: {v}' for k, v in sorted(paths.items())))


if __name__ == '__main__':
    main()
