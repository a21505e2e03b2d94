"""Throughput of the H2Crop training data pipeline.

Builds the training pipeline (``LoadH2CropH5`` -> ``H2CropRandomFlipRotate``
-> ``PackH2CropInputs``) at full size with S2, EnMAP and priors, for the Dec
(12 months) and jun (6 months) windows, and reports ms/sample and samples/s
with 0 DataLoader workers (in-process, one torch thread) and with N workers.
The ``end-to-end`` rows add what the model's data preprocessor does on the
CPU in training, in process: collating a batch, stacking it, batch CutMix
and z-scoring with the published statistics (the paper configs' settings).
Without ``--data-root`` it first writes uncompressed synthetic tiles to a
temporary folder. Files are read once before timing so they sit in the page
cache.

Example::

    python tools/analysis_tools/benchmark_data.py --num-samples 32 --workers 2
"""
import argparse
import os.path as osp
import sys
import tempfile
import time
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))

from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402

from h2crop.constants import (  # noqa: E402
    H5_DIR,
    H5_SUFFIX,
    LEVELS,
    MODALITIES,
    MONTH_WINDOWS,
    TILE_SIZE,
)
from h2crop.datasets import H2CropDataset  # noqa: E402
from h2crop.datasets.h2crop_dataset import read_split_list  # noqa: E402
from h2crop.datasets.synthetic import make_synthetic_dataset  # noqa: E402
from h2crop.models.data_preprocessor import H2CropDataPreprocessor  # noqa: E402

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))), 'configs', '_base_')
TRAIN_PIPELINE = [
    dict(type='LoadH2CropH5'),
    dict(type='H2CropRandomFlipRotate'),
    dict(type='PackH2CropInputs'),
]


def parse_args(argv: Sequence[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', help='data root with h5_data/ and the '
                        'split list; default: synthetic tiles in a temp dir')
    parser.add_argument('--ann-file', default='data_lists/train.txt',
                        help='split list (relative: data root, then CWD; '
                        'default: %(default)s)')
    parser.add_argument('--num-samples', type=int, default=32,
                        help='synthetic tiles to write (no --data-root; '
                        'default: %(default)s)')
    parser.add_argument('--size', type=int, default=TILE_SIZE,
                        help='synthetic tile side (no --data-root; default: '
                        '%(default)s)')
    parser.add_argument('--workers', type=int, default=2,
                        help='DataLoader workers for the second measurement '
                        '(default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='tiles per batch of the DataLoader and of the '
                        'end-to-end rows (default: %(default)s)')
    parser.add_argument('--epochs', type=int, default=3,
                        help='passes over the tiles per measurement '
                        '(default: %(default)s)')
    parser.add_argument('--end-months', type=int, nargs='+',
                        default=[MONTH_WINDOWS['Dec'], MONTH_WINDOWS['jun']],
                        help='month windows to measure, as the last month '
                        'read (default: 12 6, the Dec and jun windows)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic tiles and of the '
                        'augmentation draws (default: %(default)s)')
    return parser.parse_args(argv)


def warm_page_cache(paths: Sequence[str]) -> None:
    """Read every file once so that timings see the page cache."""
    for path in paths:
        with open(path, 'rb') as f:
            while f.read(1 << 24):
                pass


def time_in_process(get_item: Callable[[int], object], length: int,
                    epochs: int) -> float:
    """Seconds per sample of ``get_item`` over ``epochs`` passes."""
    get_item(0)  # warm-up (imports, first allocations)
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(length):
            get_item(i)
    return (time.perf_counter() - start) / (epochs * length)


def _collate(batch: List) -> List:
    return batch


def time_workers(dataset, workers: int, batch_size: int,
                 epochs: int) -> float:
    """Seconds per sample through a DataLoader, worker start-up excluded."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                        num_workers=workers, collate_fn=_collate,
                        persistent_workers=workers > 0)
    for _ in loader:  # first epoch starts the workers
        pass
    count = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            count += len(batch)
    return (time.perf_counter() - start) / count


def paper_preprocessor() -> H2CropDataPreprocessor:
    """The paper configs' data preprocessor (published statistics, CutMix).

    The statistics check is off: the benchmark times, it does not train.
    """
    data = Config.fromfile(osp.join(CONFIGS, 'datasets', 'h2crop.py'))
    model = Config.fromfile(osp.join(CONFIGS, 'models',
                                     'h2crop_dualstream.py')).model
    return H2CropDataPreprocessor(
        mean=data.norm_mean, std=data.norm_std,
        cutmix=model.data_preprocessor.cutmix, stats_check_batches=0)


def time_end_to_end(dataset, preprocessor: H2CropDataPreprocessor,
                    batch_size: int, epochs: int) -> float:
    """Seconds per sample: load, augment, collate, stack, CutMix, z-score."""
    def one_pass() -> int:
        count = 0
        for first in range(0, len(dataset), batch_size):
            batch = [dataset[i] for i in
                     range(first, min(first + batch_size, len(dataset)))]
            preprocessor(pseudo_collate(batch), training=True)
            count += len(batch)
        return count

    one_pass()  # warm-up (first allocations of the output buffers)
    count = 0
    start = time.perf_counter()
    for _ in range(epochs):
        count += one_pass()
    return (time.perf_counter() - start) / count


def benchmark(data_root: str, ann_file: str, end_months: Sequence[int],
              workers: int, batch_size: int, epochs: int) -> List[Dict]:
    """Measure each window with 0 and ``workers`` workers; one row each."""
    rows = []
    preprocessor = paper_preprocessor()
    for end_month in end_months:
        dataset = H2CropDataset(data_root=data_root, ann_file=ann_file,
                                modalities=MODALITIES, end_month=end_month,
                                levels=LEVELS, pipeline=TRAIN_PIPELINE)
        for n in sorted({0, workers}):
            if n == 0:
                sec = time_in_process(dataset.__getitem__, len(dataset),
                                      epochs)
            else:
                sec = time_workers(dataset, n, batch_size, epochs)
            rows.append(dict(stage='load+augment', end_month=end_month,
                             workers=n, ms_per_sample=sec * 1e3,
                             samples_per_s=1.0 / sec))
        sec = time_end_to_end(dataset, preprocessor, batch_size, epochs)
        rows.append(dict(stage='end-to-end', end_month=end_month, workers=0,
                         ms_per_sample=sec * 1e3, samples_per_s=1.0 / sec))
    return rows


def main(argv: Sequence[str] = None) -> List[Dict]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    np.random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix='h2crop_bench_') as tmp:
        data_root = args.data_root
        if data_root is None:
            data_root = tmp
            print(f'writing {args.num_samples} synthetic {args.size}px '
                  f'tiles to {tmp} ...')
            make_synthetic_dataset(tmp, args.num_samples, size=args.size,
                                   seed=args.seed)
            ann_file = osp.join(tmp, 'data_lists', 'all.txt')
            with open(ann_file, 'w') as f:
                f.write(''.join(f'synthetic_{i:06d}\n'
                                for i in range(args.num_samples)))
        else:
            ann_file = args.ann_file
        probe = H2CropDataset(data_root=data_root, ann_file=ann_file,
                              pipeline=[], lazy_init=True)
        ids = read_split_list(probe.ann_file)
        warm_page_cache([osp.join(data_root, H5_DIR, sid + H5_SUFFIX)
                         for sid in ids])
        print(f'{len(ids)} tiles, modalities {MODALITIES}, levels '
              f'{len(LEVELS)}, torch threads {torch.get_num_threads()}')
        rows = benchmark(data_root, ann_file, args.end_months, args.workers,
                         args.batch_size, args.epochs)
    print(f'{"stage":>12} {"end_month":>9} {"workers":>7} '
          f'{"ms/sample":>10} {"samples/s":>10}')
    for r in rows:
        print(f'{r["stage"]:>12} {r["end_month"]:>9} {r["workers"]:>7} '
              f'{r["ms_per_sample"]:>10.2f} {r["samples_per_s"]:>10.1f}')
    return rows


if __name__ == '__main__':
    main()
