"""Plot training loss and validation metrics of a work dir.

Reads every ``<work_dir>/<timestamp>/vis_data/scalars.json`` (the
LocalVisBackend's records; a resumed run adds a new timestamp folder, and the
runs are joined in time order) and draws one panel per key: training keys
(``loss``, ``loss_level1``, ``lr``, ...) over iterations, validation keys
(``mFscore``, ``level2/mIoU``, ...) over epochs.

Examples::

    python tools/analysis_tools/plot_curves.py work_dirs/crops_S2_H_P_jun
    python tools/analysis_tools/plot_curves.py WORK_DIR --keys loss lr \
        level4/mFscore --out curves.png
    python tools/analysis_tools/plot_curves.py WORK_DIR --list
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

#: Panels drawn when --keys is not given (those present in the records).
DEFAULT_KEYS = ('loss', 'lr', 'mFscore', 'mIoU')
SCALARS = osp.join('*', 'vis_data', 'scalars.json')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('work_dir', help='work dir of a training run')
    parser.add_argument('--keys', nargs='+', default=None,
                        help='scalar keys to plot, one panel each; default: '
                        f'those of {DEFAULT_KEYS} that were recorded')
    parser.add_argument('--out', default=None,
                        help='output image (png, pdf, svg); default '
                        'WORK_DIR/curves.png')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output image')
    parser.add_argument('--list', action='store_true',
                        help='print the recorded keys and exit')
    return parser.parse_args(argv)


def read_scalars(work_dir: str) -> List[dict]:
    """All scalar records of a work dir, runs in time order.

    Raises:
        FileNotFoundError: When the work dir holds no ``scalars.json``.
    """
    files = sorted(glob.glob(osp.join(work_dir, SCALARS)))
    if not files:
        raise FileNotFoundError(
            f'{work_dir}: no {SCALARS} (expected the work dir of a run with '
            "the default vis_backends=[dict(type='LocalVisBackend')])")
    records = []
    for path in files:
        with open(path, encoding='utf-8') as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(
                        f'{path}:{line_no}: not JSON ({err})') from err
    return records


def curve(records: Sequence[dict], key: str) -> Tuple[str, List[float],
                                                      List[float]]:
    """The x-axis name and the (x, y) values of one key.

    Training records carry ``iter`` (x = iteration); validation records
    only ``step``, which is the epoch for epoch-based runs. A resumed run
    that repeats steps keeps the later value.
    """
    points: Dict[float, float] = {}
    axis = 'epoch'
    for rec in records:
        if key not in rec:
            continue
        if 'iter' in rec:
            axis = 'iteration'
            x = rec['iter']
        else:
            x = rec.get('step', len(points))
        points[float(x)] = float(rec[key])
    xs = sorted(points)
    return axis, xs, [points[x] for x in xs]


def recorded_keys(records: Sequence[dict]) -> List[str]:
    """Scalar keys in order of first appearance (bookkeeping keys left out)."""
    skip = {'step', 'iter', 'epoch', 'time', 'data_time', 'memory'}
    keys: Dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if key not in skip and isinstance(value, (int, float)):
                keys.setdefault(key, None)
    return list(keys)


def plot(records: Sequence[dict], keys: Sequence[str], out: str) -> None:
    """Draw one panel per key into ``out``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cols = min(2, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.5 * rows),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        axis, xs, ys = curve(records, key)
        ax.plot(xs, ys, marker='o' if len(xs) < 30 else None)
        ax.set_title(key)
        ax.set_xlabel(axis)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        records = read_scalars(args.work_dir)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    available = recorded_keys(records)
    if args.list:
        print('\n'.join(available))
        return 0
    keys = args.keys or [k for k in DEFAULT_KEYS if k in available]
    unknown = [k for k in keys if k not in available]
    if unknown or not keys:
        print(f'error: keys {unknown or DEFAULT_KEYS} not recorded in '
              f'{args.work_dir}; recorded: {", ".join(available)}',
              file=sys.stderr)
        return 2
    out = args.out or osp.join(args.work_dir, 'curves.png')
    if osp.exists(out) and not args.overwrite:
        print(f'error: {out} exists; pass --overwrite or another --out',
              file=sys.stderr)
        return 2
    plot(records, keys, out)
    print(f'wrote {out} ({", ".join(keys)})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
