"""Train an h2crop model.

Examples::

    python tools/train.py configs/hyper_benefits/crops_S2_H_P_jun.py
    python tools/train.py CONFIG --resume                 # latest in work dir
    python tools/train.py CONFIG --resume work_dirs/x/epoch_3.pth
    python tools/train.py CONFIG --overwrite              # replace old run
    python tools/train.py CONFIG --cfg-options max_epochs=1 end_month=12
    bash tools/dist_train.sh CONFIG 4 --amp               # 4 processes
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
from h2crop.engine.work_dir import RunFinishedError  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train an h2crop model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints '
                        '(default: work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CKPT',
        help='resume training state from CKPT, or from the latest checkpoint '
        'of the work dir when CKPT is omitted (an error when there is '
        'none); pretrained weights (AgriFM) are not loaded then')
    parser.add_argument('--overwrite', action='store_true',
                        help='train into a work dir that holds checkpoints '
                        'of an earlier run, removing them first')
    parser.add_argument('--tensorboard', action='store_true',
                        help='also write TensorBoard events into the work '
                        "dir (pip install '.[tensorboard]')")
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: bf16 autocast (CUDA or CPU)')
    parser.add_argument('--amp-dtype', choices=('bfloat16', 'float16'),
                        default='bfloat16',
                        help='with --amp: float16 uses dynamic loss scaling '
                        '(CUDA only; default: %(default)s)')
    parse_cfg_options(parser)
    return finish_args(parser.parse_args(argv))


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        runner = build_runner_from_args(args, mode='train')
    except RunFinishedError as err:
        # nothing failed (e.g. a requeued job that had finished): exit 0
        shutdown_distributed()
        print(f'nothing to do: {err}', file=sys.stderr)
        return
    except USER_ERRORS as err:
        shutdown_distributed()
        raise SystemExit(f'error: {err}') from err
    try:
        runner.train()
    finally:
        shutdown_distributed()


if __name__ == '__main__':
    main()
