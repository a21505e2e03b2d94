"""Turn command-line arguments and a config into a ready H2CropRunner."""
import argparse
import os
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config, ConfigDict, DictAction

from h2crop.constants import H5_DIR, H5_SUFFIX
from h2crop.datasets.h2crop_dataset import (read_split_list,
                                            resolve_ann_file)
from h2crop.datasets.h5io import H2CropDataError, tile_has_parcel_ids
from h2crop.engine.dist import init_distributed
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
        'train_dataloader.batch_size=2 data_root=/data/h2crop (data_root '
        'and taxonomy reach every place that uses them)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def finish_args(args: argparse.Namespace) -> argparse.Namespace:
    """Export the local rank for mmengine (older launchers pass it as flag)."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


#: Top-level config keys that ``--cfg-options`` propagates to every place
#: that uses them (old-style configs resolve variables at parse time, so
#: overriding only the variable would not reach the dataloaders).
SHARED_KEYS = ('data_root', 'taxonomy')
_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_EVALUATORS = ('val_evaluator', 'test_evaluator')


def propagate_shared_options(cfg: Config, options: dict) -> None:
    """Apply ``data_root`` / ``taxonomy`` overrides wherever they are used.

    ``data_root`` goes to every dataloader's dataset; ``taxonomy`` to every
    dataset, the model and every evaluator.
    """
    def datasets():
        for name in _LOADERS:
            loader = cfg.get(name)
            if isinstance(loader, (dict, ConfigDict)) and 'dataset' in loader:
                yield loader['dataset']

    if 'data_root' in options:
        for ds in datasets():
            ds['data_root'] = options['data_root']
    if 'taxonomy' in options:
        value = options['taxonomy']
        for ds in datasets():
            ds['taxonomy'] = value
        if isinstance(cfg.get('model'), (dict, ConfigDict)):
            cfg.model['taxonomy'] = value
        for name in _EVALUATORS:
            evs = cfg.get(name)
            for ev in (evs if isinstance(evs, list) else [evs]):
                if isinstance(ev, (dict, ConfigDict)):
                    ev['taxonomy'] = value


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
    cfg = Config.fromfile(args.config)
    if getattr(args, 'cfg_options', None):
        cfg.merge_from_dict(args.cfg_options)
        propagate_shared_options(cfg, args.cfg_options)
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
        if args.resume == 'auto':
            cfg.resume = True
            cfg.load_from = None
        elif args.resume is not None:
            cfg.resume = True
            cfg.load_from = args.resume
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
        if getattr(args, 'out', None) or getattr(args, 'show_dir', None):
            hooks.append(dict(type='PredictionWriterHook',
                              out_dir=args.out, show_dir=args.show_dir))
        cfg.custom_hooks = hooks
        evaluators = cfg.test_evaluator if isinstance(
            cfg.test_evaluator, list) else [cfg.test_evaluator]
        if cfg.get('parcel_metric', True):
            evaluators = add_parcel_metric(cfg, evaluators)
        for ev in evaluators:
            if isinstance(ev, (dict, ConfigDict)) and ev.get(
                    'output_dir') is None:
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
    return RUNNERS.build(cfg)
