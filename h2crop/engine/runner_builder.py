"""Turn command-line arguments and a config into a ready H2CropRunner."""
import argparse
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction

from h2crop.constants import H5_DIR, H5_SUFFIX
from h2crop.datasets.h2crop_dataset import read_split_list, resolve_ann_file
from h2crop.datasets.h5io import H2CropDataError, tile_has_parcel_ids
from h2crop.engine.checkpoint_experiment import (
    check_any_window_maximum,
    reconcile_experiment,
    record_of_meta,
)
from h2crop.engine.dist import init_distributed
from h2crop.engine.experiment import (
    EXPERIMENT_KEYS,
    ExperimentConfigError,
    resolve_experiment,
)
from h2crop.engine.option_check import merge_checked
from h2crop.engine.preflight import PreflightError, run_preflight
from h2crop.engine.work_dir import (
    WorkDirError,
    check_epochs_left,
    check_output_dir,
    check_work_dir,
    clear_checkpoints,
    drop_pretrained_init,
)
from h2crop.models.weights.io import CheckpointReadError, read_checkpoint_meta
from h2crop.registry import RUNNERS
from h2crop.utils import register_all_modules


def parse_cfg_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--cfg-options``, ``--launcher`` and torchrun's ``--local-rank``.

    The arguments every tool that builds a Runner shares; call
    :func:`finish_args` on the parsed namespace.
    """
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.batch_size=2 data_root=/data/h2crop max_epochs=1. '
        'The experiment choices (' + ', '.join(EXPERIMENT_KEYS) + ') reach '
        'every place that uses them; lower-level values that contradict '
        'them are refused')
    parser.add_argument('--skip-preflight', action='store_true',
                        help='do not check the data of the splits the run '
                        'uses before it starts (split lists, files, id '
                        'ranges, the first tile of each split)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='job launcher: none (one '
                        'process), pytorch (torchrun, e.g. '
                        'tools/dist_train.sh) or slurm (srun) (default: '
                        '%(default)s)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


#: Errors of the user's choices or data: tools print them without a trace.
USER_ERRORS = (ExperimentConfigError, PreflightError, WorkDirError)


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Export the local rank for mmengine (older launchers pass it as flag)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


#: mmengine's TensorBoard writer (needs the optional ``tensorboard`` package).
TENSORBOARD_BACKEND = 'TensorboardVisBackend'


def add_tensorboard(cfg: Config) -> None:
    """Also write TensorBoard events (``<work_dir>/<time>/vis_data``).

    Raises:
        ExperimentConfigError: When the optional package is not installed.
    """
    try:
        import tensorboard  # noqa: F401
    except ImportError as err:
        raise ExperimentConfigError(
            '--tensorboard needs the optional tensorboard package: '
            "pip install '.[tensorboard]' (or pip install tensorboard)"
        ) from err
    visualizer = cfg.get('visualizer')
    if not isinstance(visualizer, (dict, ConfigDict)):
        raise ExperimentConfigError('--tensorboard: the config has no '
                                    'visualizer to add a backend to')
    backends = list(visualizer.get('vis_backends') or [])
    if not any(b.get('type') == TENSORBOARD_BACKEND for b in backends):
        backends.append(dict(type=TENSORBOARD_BACKEND))
    visualizer['vis_backends'] = backends


def _set_amp(cfg: Config, dtype: str) -> None:
    """Switch the optimizer wrapper to mixed precision for this device."""
    wrapper = cfg.optim_wrapper
    if torch.cuda.is_available():
        wrapper.type = 'AmpOptimWrapper'
        wrapper.dtype = dtype
        wrapper.setdefault('loss_scale', 'dynamic')
        return
    if dtype != 'bfloat16':
        raise SystemExit('--amp-dtype float16 needs CUDA (dynamic loss '
                         'scaling on a GPU); on CPU use bfloat16 autocast '
                         '(the --amp default)')
    wrapper.type = 'AutocastOptimWrapper'
    wrapper.dtype = 'bfloat16'
    wrapper.pop('loss_scale', None)


def prepare_cfg(args: argparse.Namespace, mode: str) -> Config:
    """Load the config and apply the command-line choices.

    Args:
        args: Parsed arguments of tools/train.py or tools/test.py.
        mode: ``'train'`` or ``'test'``.
    """
    cfg = merge_checked(Config.fromfile(args.config),
                        getattr(args, 'cfg_options', None))
    record = None
    allow = getattr(args, 'allow_experiment_mismatch', False)
    if mode == 'test':
        # the weights' experiment fills unstated choices and refuses
        # contradicting ones before anything is built
        try:
            record = record_of_meta(read_checkpoint_meta(args.checkpoint))
        except (FileNotFoundError, CheckpointReadError) as err:
            raise ExperimentConfigError(str(err)) from None
        cfg = reconcile_experiment(cfg, record, args.checkpoint, mode='test',
                                   allow_mismatch=allow)
    cfg = resolve_experiment(cfg)
    if mode == 'test' and not allow:
        check_any_window_maximum(cfg, record, args.checkpoint)
    cfg.setdefault('default_scope', 'h2crop')
    cfg.setdefault('runner_type', 'H2CropRunner')
    cfg.launcher = args.launcher

    if getattr(args, 'work_dir', None):
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if mode == 'train':
        if getattr(args, 'amp', False):
            _set_amp(cfg, args.amp_dtype)
        if getattr(args, 'tensorboard', False):
            add_tensorboard(cfg)
        ckpt = check_work_dir(cfg.work_dir, args.resume,
                              getattr(args, 'overwrite', False))
        if ckpt is not None:
            check_epochs_left(ckpt, cfg.get('train_cfg', {}).get(
                'max_epochs'), args.config)
            cfg.resume = True
            cfg.load_from = ckpt
            # The resumed weights replace pretrained ones: do not need them.
            drop_pretrained_init(cfg.model)
        elif cfg.get('load_from') and cfg.get('load_strict', True):
            # a fresh run from trained weights: every weight is loaded
            drop_pretrained_init(cfg.model)
    elif mode == 'test':
        # Weights only: never restore training state, never initialise from
        # pretrained files (the checkpoint overwrites every weight).
        cfg.load_from = args.checkpoint
        cfg.resume = False
        for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                    'param_scheduler', 'val_dataloader', 'val_cfg',
                    'val_evaluator'):
            cfg.pop(key, None)
        hooks = list(cfg.get('custom_hooks', []) or [])
        for flag in ('out', 'show_dir'):
            check_output_dir(getattr(args, flag, None),
                             '--' + flag.replace('_', '-'),
                             getattr(args, 'overwrite', False))
        if getattr(args, 'out', None) or getattr(args, 'show_dir', None):
            hooks.append(dict(type='PredictionWriterHook',
                              out_dir=args.out, show_dir=args.show_dir))
        cfg.custom_hooks = hooks
        evaluators = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        if cfg.get('parcel_metric', True):
            evaluators = add_parcel_metric(cfg, evaluators)
        # metric files go to this run's work dir; a config dumped by an
        # earlier run carries that run's folder, which --work-dir replaces
        explicit = bool(getattr(args, 'work_dir', None))
        for ev in evaluators:
            if isinstance(ev, (dict, ConfigDict)) and (
                    explicit or ev.get('output_dir') is None):
                ev['output_dir'] = cfg.work_dir
        if len(evaluators) > 1:
            cfg.test_evaluator = evaluators
    else:
        raise ValueError(f'mode must be train or test, got {mode!r}')
    return cfg


def add_parcel_metric(cfg: Config, evaluators: list) -> list:
    """Append a ParcelMetric when the test tiles carry parcel ids.

    The first tile of the test split decides (converted regions have
    ``parcel_id`` in every tile). The metric takes the taxonomy of the first
    evaluator. Set ``parcel_metric = False`` in a config to skip this.

    Returns:
        The evaluator list (the caller stores it as ``cfg.test_evaluator``).
    """
    if any(isinstance(ev, (dict, ConfigDict)) and
           ev.get('type') == 'ParcelMetric' for ev in evaluators):
        return evaluators
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    root = dataset.get('data_root', '')
    try:
        ids = read_split_list(resolve_ann_file(dataset.get('ann_file', ''),
                                               root))
        if not ids or not tile_has_parcel_ids(
                osp.join(root, H5_DIR, ids[0] + H5_SUFFIX)):
            return evaluators
    except H2CropDataError:
        return evaluators  # the dataset reports it when it is built
    taxonomy = next((ev.get('taxonomy') for ev in evaluators
                     if isinstance(ev, (dict, ConfigDict))), None)
    return list(evaluators) + [dict(type='ParcelMetric', taxonomy=taxonomy)]


def build_runner_from_args(args: argparse.Namespace, mode: str,
                           cfg: Optional[Config] = None):
    """Initialise distribution (if asked), then build an H2CropRunner."""
    register_all_modules(init_default_scope=False)
    cfg = cfg or prepare_cfg(args, mode)
    if cfg.launcher != 'none':
        backend = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend')
        if backend == 'nccl' and not torch.cuda.is_available():
            backend = None  # the config's GPU default; follow the device
        init_distributed(cfg.launcher, backend=backend)
    if not getattr(args, 'skip_preflight', False):
        loader = cfg.get(f'{mode}_dataloader') or {}
        workers = min(int(loader.get('num_workers', 1) or 1),
                      os.cpu_count() or 1)
        run_preflight(cfg, workers=max(1, workers))
    if mode == 'train' and getattr(args, 'overwrite', False):
        clear_checkpoints(cfg.work_dir)
    return RUNNERS.build(cfg)
