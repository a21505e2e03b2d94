"""Speed and peak memory of an h2crop model on random full tiles.

A config with ``train_crop_size`` is timed on windows of that side (what
one training sample and one test window are); times stay "per tile", i.e.
per window.

Reports, per tile:

* forward: eval mode under ``torch.no_grad()``, ``mode='tensor'``;
* forward + backward: train mode, the sum of the losses of ``mode='loss'``
  on random labels, then ``backward()`` (no optimizer step);

and the peak memory of each phase. On the CPU peak memory is the rise of the
process' resident-set high-water mark (``VmHWM`` of ``/proc/self/status``,
reset through ``/proc/self/clear_refs`` before each phase) over the resident
size when the phase starts; on CUDA it is ``torch.cuda.max_memory_allocated``
(and its rise over the memory allocated when the phase starts). The CPU
allocator keeps memory freed by an earlier phase, so a later phase's CPU rise
can be understated: measure one phase alone with ``--phases train``.

Inputs are random tensors shaped like the data preprocessor's output (the
preprocessor itself is not timed). No weights are loaded. ``--amp`` runs the
model under bf16 autocast on CUDA; CPU timings are always float32.

Example::

    python tools/analysis_tools/benchmark_model.py \
        configs/hyper_benefits/crops_S2_H_P_jun.py --iters 1 --warmup 0
"""
import argparse
import contextlib
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402

from h2crop.constants import TILE_SIZE  # noqa: E402
from h2crop.engine.experiment import ExperimentConfigError  # noqa: E402
from h2crop.utils.model_analysis import (  # noqa: E402
    build_model_from_cfg,
    count_parameters,
    dummy_data_samples,
    dummy_inputs,
    load_model_config,
)

_STATUS = '/proc/self/status'
_CLEAR_REFS = '/proc/self/clear_refs'
_MIB = 1024.0**2


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--tile-size', type=int, default=None,
                        help='S2 tile side in px (default: the config\'s '
                        f'`tile_size`, else {TILE_SIZE})')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='tiles per forward / training step (default: '
                        '%(default)s)')
    parser.add_argument('--iters', type=int, default=3,
                        help='timed iterations per phase (default: '
                        '%(default)s)')
    parser.add_argument('--warmup', type=int, default=1,
                        help='untimed iterations before each phase '
                        '(default: %(default)s)')
    parser.add_argument('--device', choices=('cpu', 'cuda', 'auto'),
                        default='auto',
                        help='auto: cuda when available, else cpu (default: '
                        '%(default)s)')
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast (CUDA only)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch\'s choice)')
    parser.add_argument('--phases', nargs='+', default=['forward', 'train'],
                        choices=('forward', 'train'),
                        help='what to measure (default: forward train)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the weights and the random inputs '
                        '(default: %(default)s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, key=value')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 1:
        parser.error('--iters and --batch-size must be >= 1, --warmup >= 0')
    return args


# ---------------------------------------------------------------- memory
def _status_kib(field: str) -> Optional[int]:
    """A ``kB`` field of ``/proc/self/status`` (None where unavailable)."""
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class _MemoryProbe:
    """Peak memory of a phase on the CPU or on one CUDA device."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start = 0
        self.reset_ok = True

    def begin(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return
        try:  # '5' resets the peak RSS (VmHWM) to the current RSS
            with open(_CLEAR_REFS, 'w') as f:
                f.write('5')
        except OSError:
            self.reset_ok = False
        self.start = (_status_kib('VmRSS') or 0) * 1024

    def end(self) -> Tuple[float, float]:
        """(peak MiB, rise over the start MiB)."""
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            hwm = _status_kib('VmHWM')
            if hwm is None:
                return float('nan'), float('nan')
            peak = hwm * 1024
        return peak / _MIB, (peak - self.start) / _MIB

    def describe(self) -> str:
        if self.device.type == 'cuda':
            return 'torch.cuda.max_memory_allocated'
        what = 'RSS high-water mark (VmHWM)'
        if not self.reset_ok:
            what += (', NOT reset between phases (clear_refs not writable): '
                     'peak since process start')
        return what


# ---------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time_phase(step: Callable[[], None], iters: int, warmup: int,
                device: torch.device,
                probe: _MemoryProbe) -> Tuple[List[float], float, float]:
    """Run ``warmup`` + ``iters`` steps; seconds per timed step and memory."""
    probe.begin()
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    peak, rise = probe.end()
    return times, peak, rise


def _resolve_device(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('error: --device cuda requested but CUDA is not '
                         'available here (torch.cuda.is_available() is '
                         'False); use --device cpu or auto')
    return torch.device(name)


def _sum_losses(losses: Dict[str, object]) -> torch.Tensor:
    """Sum of every entry whose key contains ``'loss'`` (mmengine rule)."""
    parts = []
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        if isinstance(value, (list, tuple)):
            parts.extend(value)
        else:
            parts.append(value)
    if not parts:
        raise RuntimeError(f'mode="loss" returned no loss entries: '
                           f'{sorted(losses)}')
    return sum(p.float().mean() for p in parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    device = _resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    amp = args.amp and device.type == 'cuda'
    options = dict(args.cfg_options or {})
    if args.tile_size:  # a choice: the EnMAP encoder's size follows it
        options['tile_size'] = args.tile_size
    try:
        cfg = load_model_config(args.config, options)
    except ExperimentConfigError as err:  # e.g. a misspelt option key
        raise SystemExit(f'error: {err}') from err
    tile = int(cfg.get('tile_size', TILE_SIZE))
    # a model trained on crops (train_crop_size) steps and tests on
    # windows of that side: time those
    crop = cfg.get('train_crop_size')
    tile = int(crop) if crop else tile
    batch = args.batch_size

    model = build_model_from_cfg(cfg, 'cpu').to(device)
    params = count_parameters(model)
    inputs = dummy_inputs(cfg.model, tile, batch, device=device,
                          seed=args.seed)
    samples = dummy_data_samples(cfg.model, tile, batch, device=device,
                                 seed=args.seed + 1)
    autocast = (torch.autocast('cuda', dtype=torch.bfloat16)
                if amp else contextlib.nullcontext())
    probe = _MemoryProbe(device)

    print(f'config: {args.config}')
    where = (torch.cuda.get_device_name(device) if device.type == 'cuda' else
             f'cpu, {torch.get_num_threads()} torch threads, '
             f'{os.cpu_count()} cores')
    print(f'device: {where}; precision: '
          f'{"bf16 autocast" if amp else "float32"}'
          + (' (--amp applies to CUDA only; ignored)' if args.amp and not amp
             else ''))
    what = 'window (train_crop_size)' if crop else 'tile'
    print(f'{what} {tile}x{tile} px, batch {batch}, iters {args.iters}, '
          f'warmup {args.warmup}; model {params["total"] / 1e6:.1f} M '
          f'parameters; modalities {tuple(cfg.model.modalities)}, '
          f'T = {cfg.model.num_frames}')
    if hasattr(os, 'getloadavg'):
        print('load average before: ' +
              ' '.join(f'{x:.2f}' for x in os.getloadavg()))
    print(f'peak memory: {probe.describe()}')

    def forward_step() -> None:
        with torch.no_grad(), autocast:
            model(inputs, mode='tensor')

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast:
            losses = model(inputs, samples, mode='loss')
        _sum_losses(losses).backward()

    phases = {
        'forward': ('forward (eval, no_grad)', forward_step, False),
        'train': ('forward+backward (train, sum of losses)', train_step,
                  True),
    }
    for key in args.phases:
        label, step, training = phases[key]
        model.train(training)
        times, peak, rise = _time_phase(step, args.iters, args.warmup, device,
                                        probe)
        per_tile = [1e3 * t / batch for t in times]
        mean = sum(per_tile) / len(per_tile)
        print(f'{label}: {mean:.1f} ms/tile (mean of {len(per_tile)}, min '
              f'{min(per_tile):.1f}); peak memory {peak:.0f} MiB '
              f'(+{rise:.0f} MiB over the phase start)')
        if training:
            no_grad = [n for n, p in model.named_parameters()
                       if p.requires_grad and p.grad is None]
            if no_grad:
                print(f'  note: {len(no_grad)} trainable parameter tensors '
                      f'got no gradient, e.g. {no_grad[:3]}')
    if hasattr(os, 'getloadavg'):
        print('load average after: ' +
              ' '.join(f'{x:.2f}' for x in os.getloadavg()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
