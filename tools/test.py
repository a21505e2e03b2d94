"""Test a trained h2crop checkpoint (weights only; no training state).

Examples::

    python tools/test.py CONFIG work_dirs/x/best_mFscore_epoch_42.pth
    python tools/test.py CONFIG CKPT --out preds/ --show-dir vis/
    bash tools/dist_test.sh CONFIG CKPT 4
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from h2crop.engine.dist import shutdown_distributed  # noqa: E402
from h2crop.engine.runner_builder import (  # noqa: E402
    USER_ERRORS,
    build_runner_from_args,
    finish_args,
    parse_cfg_options,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test an h2crop model')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint with model weights')
    parser.add_argument('--work-dir', help='folder for logs and metric '
                        'files (default: work_dirs/<config name>)')
    parser.add_argument('--out', help='write per-tile predictions into this '
                        'folder: <id>_<level>.png, paletted PNGs whose '
                        'values are the class ids, in the colours of '
                        'tools/infer.py, and <level>_classes.csv (id, '
                        'name, colour); default: none')
    parser.add_argument('--show-dir', help='write pictures (S2 colour '
                        'composite, prediction and label per level, with '
                        'a legend of the classes present) into this '
                        'folder; default: none')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into --out / --show-dir folders that '
                        'hold files of an earlier test (files of the same '
                        'names are replaced)')
    parser.add_argument(
        '--allow-experiment-mismatch', action='store_true',
        help='test although the config states a taxonomy, band statistics, '
        'window, inputs or levels other than the checkpoint\'s (a warning '
        'instead of an error; default: refuse)')
    parse_cfg_options(parser)
    return finish_args(parser.parse_args(argv))


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        runner = build_runner_from_args(args, mode='test')
    except USER_ERRORS as err:
        shutdown_distributed()
        raise SystemExit(f'error: {err}') from err
    try:
        runner.test()
    finally:
        shutdown_distributed()


if __name__ == '__main__':
    main()
