"""End-to-end demo on synthetic tiles, sized for a 2-core CPU.

1. writes a synthetic H2Crop-format dataset if ``--data-root`` has none;
2. computes the per-band statistics of its training split
   (``<work_dir>/band_stats.py``, a config inheriting the demo config with
   them: the synthetic reflectances are not offset like the published
   statistics assume) and trains it (tools/train.py) with a progress bar;
3. tests the best checkpoint (tools/test.py), which logs per-level and
   per-class tables and writes CSV/JSON into the work dir;
4. prints the per-level table beside a majority-class baseline and writes
   ``<work_dir>/demo_summary.png`` (per-level F-score bars and a
   prediction-vs-label map of a test tile);
5. builds a small georeferenced scene (UTM, 12 monthly S2 GeoTIFFs, EnMAP,
   prior) from test tiles, maps it with tools/infer.py into
   ``<work_dir>/scene/map.tif`` (a COG) and writes its PNG preview with a
   legend, ``<work_dir>/scene/map_preview.png``.

Usage: ``make demo`` (replaces an earlier demo run in ``work_dirs/demo``) or
``python tools/demo.py --data-root data/demo --work-dir work_dirs/demo
[--overwrite]``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from h2crop.constants import DATA_LISTS_DIR, H5_DIR, LEVELS, TAXONOMY_FILE  # noqa: E402
from h2crop.datasets.band_stats import compute_band_stats, write_band_stats  # noqa: E402
from h2crop.datasets.synthetic import make_synthetic_dataset  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'demo', 'h2crop_demo_crop.py')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data-root', default='data/demo',
                   help='synthetic dataset folder; written when it holds no '
                   'complete dataset (h5_data/ and data_lists/), else reused')
    p.add_argument('--work-dir', default='work_dirs/demo',
                   help='folder for the log, checkpoints, metrics and '
                   'figures')
    p.add_argument('--overwrite', action='store_true',
                   help='replace the checkpoints of an earlier demo run in '
                   '--work-dir (without it a second run is refused; '
                   '`make demo` passes it)')
    p.add_argument('--num-samples', type=int, default=120,
                   help='tiles of a newly written dataset')
    p.add_argument('--size', type=int, default=96,
                   help='tile side of a newly written dataset (multiple of '
                   '3); also the run\'s tile_size')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the synthetic data generator')
    p.add_argument('--config', default=CONFIG, help='config to train')
    p.add_argument('--cfg-options', nargs='*', default=[],
                   help='more KEY=VALUE settings for train and test, e.g. '
                   'max_epochs=2')
    return p.parse_args(argv)


def ensure_dataset(args: argparse.Namespace) -> str:
    """Create the synthetic dataset unless a complete one is there."""
    lists = [osp.join(args.data_root, DATA_LISTS_DIR, f'{s}.txt')
             for s in ('train', 'val', 'test')]
    if all(osp.isfile(p) for p in lists) and glob.glob(
            osp.join(args.data_root, H5_DIR, '*.h5')):
        print(f'[demo] using the dataset in {args.data_root}')
    else:
        print(f'[demo] writing {args.num_samples} synthetic tiles of '
              f'{args.size} px to {args.data_root} ...')
        make_synthetic_dataset(args.data_root, args.num_samples,
                               size=args.size, seed=args.seed)
    return osp.join(args.data_root, TAXONOMY_FILE)


def run(cmd: List[str]) -> None:
    print('[demo] $ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def newest(pattern: str) -> str:
    files = sorted(glob.glob(pattern), key=osp.getmtime)
    if not files:
        raise SystemExit(f'[demo] nothing matches {pattern}')
    return files[-1]


def majority_baseline(data_root: str, taxonomy: str) -> Dict[str, float]:
    """MFscore (%) per level of predicting the training majority class."""
    import h5py

    from h2crop.datasets.h5io import find_key
    from h2crop.evaluation.functional import class_metrics, summary_metrics
    from h2crop.taxonomy import load_taxonomy
    tax = load_taxonomy(taxonomy)

    def label_counts(split: str) -> List[np.ndarray]:
        counts = [np.zeros(n, np.int64) for n in tax.num_classes]
        with open(osp.join(data_root, DATA_LISTS_DIR, f'{split}.txt')) as f:
            ids = [line.strip() for line in f if line.strip()]
        for sid in ids:
            with h5py.File(osp.join(data_root, H5_DIR, sid + '.h5'), 'r') as h:
                lab = h[find_key(h, 'label')][()]
            for k in range(len(LEVELS)):
                counts[k] += np.bincount(lab[k].ravel(),
                                         minlength=tax.num_classes[k])
        return counts

    train, test = label_counts('train'), label_counts('test')
    out = {}
    for k, level in enumerate(LEVELS):
        major = int(train[k].argmax())
        gt = test[k]
        pred = np.zeros_like(gt)
        pred[major] = gt.sum()
        inter = np.zeros_like(gt)
        inter[major] = gt[major]
        per_class = class_metrics(inter, pred, gt)
        out[level] = 100 * summary_metrics(per_class, inter, gt)['mFscore']
    return out


def summary_figure(work_dir: str, scores: Dict[str, float],
                   baseline: Dict[str, float], show_dir: str) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    from h2crop.visualization import plot_level_scores
    bars = plot_level_scores(scores, baseline)
    bars_png = osp.join(work_dir, 'demo_fscore_bars.png')
    bars.savefig(bars_png, dpi=100)
    plt.close(bars)
    tiles = sorted(glob.glob(osp.join(show_dir, '*.png')))
    fig = plt.figure(figsize=(13, 9))
    ax1 = fig.add_subplot(2, 1, 1)
    ax1.imshow(mpimg.imread(bars_png))
    ax1.axis('off')
    ax1.set_title('test mFscore per level (model vs majority class)')
    if tiles:
        ax2 = fig.add_subplot(2, 1, 2)
        ax2.imshow(mpimg.imread(tiles[0]))
        ax2.axis('off')
        ax2.set_title('a test tile: prediction (top) vs label (bottom)')
    out = osp.join(work_dir, 'demo_summary.png')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    taxonomy = ensure_dataset(args)
    stats = compute_band_stats(args.data_root, 'train')
    config = write_band_stats(stats, args.work_dir,
                              base_config=args.config)[-1]
    print(f'[demo] band statistics of the training split: {config}')
    opts = [f'data_root={args.data_root}', f'taxonomy={taxonomy}',
            f'tile_size={args.size}', *args.cfg_options]
    py = sys.executable
    run([py, 'tools/train.py', config, '--work-dir', args.work_dir,
         *(['--overwrite'] if args.overwrite else []),
         '--cfg-options', *opts])
    best = newest(osp.join(args.work_dir, 'best_mFscore_*.pth'))
    show_dir = osp.join(args.work_dir, 'test_vis')
    run([py, 'tools/test.py', config, best, '--work-dir', args.work_dir,
         '--show-dir', show_dir,
         *(['--overwrite'] if args.overwrite else []),
         '--cfg-options', *opts])
    result_json = newest(osp.join(args.work_dir, 'test_metrics_*.json'))
    with open(result_json) as f:
        metrics = json.load(f)['metrics']
    baseline = majority_baseline(args.data_root, taxonomy)
    scores = {lv: metrics[f'{lv}/mFscore'] for lv in LEVELS}
    print('\n[demo] test results (percent)')
    print(f'{"level":8s} {"aAcc":>7s} {"mIoU":>7s} {"mFscore":>8s} '
          f'{"majority mFscore":>17s}')
    for lv in LEVELS:
        print(f'{lv:8s} {metrics[f"{lv}/aAcc"]:7.2f} '
              f'{metrics[f"{lv}/mIoU"]:7.2f} {scores[lv]:8.2f} '
              f'{baseline[lv]:17.2f}')
    print(f'mean mFscore {metrics["mFscore"]:.2f}; hierarchy consistency '
          f'{metrics.get("hierarchy_consistency", float("nan")):.2f}')
    png = summary_figure(args.work_dir, scores, baseline, show_dir)
    print(f'[demo] metrics: {result_json} (+ CSV beside it)')
    print(f'[demo] figure:  {png}')
    failed = [lv for lv in LEVELS if not scores[lv] > 2 * baseline[lv]]
    if failed:
        raise SystemExit(f'[demo] the model did not clearly beat the '
                         f'majority class on {failed}')
    map_scene(args, config, best, opts)


def map_scene(args: argparse.Namespace, config: str, checkpoint: str,
              opts: List[str]) -> None:
    """Map a georeferenced scene made of test tiles.

    ``config`` is the config the model was trained with (its band
    statistics normalise the scene as they did the training tiles). The map
    is checked on the labels.
    """
    import rasterio

    from h2crop.mapping.synthetic_scene import (
        mosaic_tiles,
        scene_ids,
        write_scene,
    )
    folder = osp.join(args.work_dir, 'scene')
    ids = scene_ids(args.data_root, 'test')
    rows, cols = 2, 3
    mosaic = mosaic_tiles(args.data_root, ids, rows, cols)
    # a size that is not a multiple of the window
    height, width = rows * args.size - 17, cols * args.size - 29
    paths = write_scene(osp.join(folder, 'inputs'), mosaic, height, width)
    out = osp.join(folder, 'map.tif')
    run([sys.executable, 'tools/infer.py', config, checkpoint,
         '--s2', *paths['s2'], '--enmap', paths['enmap'], '--prior',
         paths['prior'], '--out', out, '--show', '--overwrite',
         '--cfg-options', *opts])
    with rasterio.open(out) as ds, rasterio.open(paths['label']) as lab:
        pred, label = ds.read(list(range(1, len(LEVELS) + 1))), lab.read()
        print(f'[demo] scene map {ds.width} x {ds.height} px, '
              f'{ds.crs.to_string()}, {ds.count} bands; pixel accuracy vs '
              'the labels: ' + ', '.join(
                  f'{lv} {100 * np.mean(pred[k] == label[k]):.1f} %'
                  for k, lv in enumerate(LEVELS)))
    print(f'[demo] map:     {out}')
    print(f'[demo] preview: {osp.join(folder, "map_preview.png")}')


if __name__ == '__main__':
    main()
