"""Parameters and forward FLOPs of an h2crop model at one full tile.

Parameters are counted on a model built on the ``meta`` device (no memory,
no weights loaded). FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` for one forward at B = 1 in
eval mode on random preprocessed inputs, as ``2 * multiply-adds`` of matrix
products, convolutions and attention (the convention of the paper's
"about 1.02 TFLOP per tile"). The forward is first tried on the ``meta``
device (shapes only); if an op needs real values it is run on the CPU.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/hyper_benefits/crops_S2_H_P_jun.py
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmengine.config import DictAction  # noqa: E402

from h2crop.constants import TILE_SIZE  # noqa: E402
from h2crop.engine.experiment import ExperimentConfigError  # noqa: E402
from h2crop.utils.model_analysis import (  # noqa: E402
    build_model_from_cfg,
    count_parameters,
    dummy_inputs,
    forward_flops,
    load_model_config,
)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--tile-size', type=int, default=None,
                        help='S2 tile side in px (default: the config\'s '
                        f'`tile_size`, else {TILE_SIZE})')
    parser.add_argument('--device', choices=('auto', 'meta', 'cpu'),
                        default='auto',
                        help='device of the FLOP-counting forward; auto: '
                        'meta, falling back to cpu (default: %(default)s)')
    parser.add_argument('--no-flops', action='store_true',
                        help='count parameters only')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    return parser.parse_args(argv)


def _millions(n: int) -> str:
    return f'{n / 1e6:.1f} M'


def _count_flops(cfg, tile_size: int, device: str, meta_model):
    """Return (total, per_module, device used)."""
    if device in ('auto', 'meta'):
        inputs = dummy_inputs(cfg.model, tile_size, 1, device='meta')
        try:
            total, per = forward_flops(meta_model, inputs)
            return total, per, 'meta'
        except (RuntimeError, NotImplementedError) as err:
            if device == 'meta':
                raise
            reason = str(err).strip().splitlines()[-1]
            print(f'(meta forward not possible: {reason}; counting on cpu)')
    model = build_model_from_cfg(cfg, 'cpu')
    inputs = dummy_inputs(cfg.model, tile_size, 1, device='cpu')
    total, per = forward_flops(model, inputs)
    return total, per, 'cpu'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    options = dict(args.cfg_options or {})
    if args.tile_size:  # a choice: the EnMAP encoder's size follows it
        options['tile_size'] = args.tile_size
    try:
        cfg = load_model_config(args.config, options)
    except ExperimentConfigError as err:  # e.g. a misspelt option key
        raise SystemExit(f'error: {err}') from err
    tile = int(cfg.get('tile_size', TILE_SIZE))
    model = build_model_from_cfg(cfg, 'meta')
    params = count_parameters(model)
    width = max(len(n) for n in params['per_module'])

    print(f'config: {args.config}')
    print(f'model: {type(model).__name__}, modalities '
          f'{tuple(cfg.model.modalities)}, levels {tuple(cfg.model.levels)}, '
          f'T = {cfg.model.num_frames}')
    print(f'Parameters: {_millions(params["total"])} '
          f'(trainable {_millions(params["trainable"])}; '
          f'{params["total"]:,} exactly)')
    for name, n in params['per_module'].items():
        print(f'  {name:<{width}}  {_millions(n):>9}')
    if args.no_flops:
        return 0

    total, per, used = _count_flops(cfg, tile, args.device, model)
    print(f'Forward FLOPs at {tile}x{tile} px, B = 1 (FlopCounterMode on '
          f'{used}; FLOPs = 2 x multiply-adds of matmul/conv/attention): '
          f'{total / 1e9:.1f} GFLOPs')
    for name, n in per.items():
        share = 100.0 * n / total if total else 0.0
        print(f'  {name:<{width}}  {n / 1e9:>9.1f} GFLOPs  ({share:4.1f} %)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
