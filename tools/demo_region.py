"""End-to-end "bring your own region" demo on a synthetic region (CPU).

1. writes a synthetic region as raw geodata (12 monthly S2 GeoTIFFs, an
   EnMAP GeoTIFF offset by half a pixel, parcels of this and last year as
   GeoPackages with local crop codes, a code map and a taxonomy);
2. converts it with ``tools/dataset_converters/rasters2h2crop.py`` into
   96 px tiles (spatially blocked split) and checks them with
   ``tools/misc/check_dataset.py``;
3. trains ``configs/demo/region_demo.py`` briefly (``tools/train.py``);
4. tests the best checkpoint (``tools/test.py``): pixel metrics and, since
   the tiles carry ``parcel_id``, parcel-level metrics;
5. maps the test tiles with ``tools/infer.py --parcels``: every tile's
   prediction as a GeoTIFF where the tile was cut, their mosaic, and the
   parcels with their predicted classes (GeoPackage).

The model trains with the band statistics of the converted training tiles
(``compute_band_stats``), as a user's own region should.

Usage: ``make demo-region`` (which replaces its previous run) or
``python tools/demo_region.py [--overwrite]``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from h2crop.constants import DATA_LISTS_DIR, LEVELS  # noqa: E402
from h2crop.datasets.band_stats import compute_band_stats, write_band_stats  # noqa: E402
from h2crop.datasets.converters.convert import REPORT_FILE  # noqa: E402
from h2crop.datasets.converters.synthetic_region import make_synthetic_region  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'demo', 'region_demo.py')
TILE = 96


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default='data/region_demo',
                   help='folder for raw/ (geodata) and tiles/ (converted) '
                   '(default: %(default)s)')
    p.add_argument('--work-dir', default='work_dirs/region_demo',
                   help='folder of the training run, test metrics, tile '
                   'maps and the parcels with predictions (default: '
                   '%(default)s)')
    p.add_argument('--tiles-x', type=int, default=8,
                   help=f'width of the synthetic region in {TILE} px tiles '
                   '(default: %(default)s)')
    p.add_argument('--tiles-y', type=int, default=6,
                   help=f'height of the synthetic region in {TILE} px tiles '
                   '(default: %(default)s)')
    p.add_argument('--workers', type=int, default=2,
                   help='processes of the tile conversion (default: '
                   '%(default)s)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the synthetic region (rasters, parcels; '
                   'default: %(default)s)')
    p.add_argument('--config', default=CONFIG,
                   help='config the band-statistics config inherits and '
                   'that is trained (default: configs/demo/region_demo.py)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace the tiles, the run in --work-dir and the '
                   'maps of a previous demo (raw/ is always rewritten)')
    return p.parse_args()


def run(cmd: List[str]) -> float:
    """Run a command from the repository root; return its seconds."""
    print('[demo-region] $ ' + ' '.join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    py = sys.executable
    start = time.perf_counter()
    raw_dir = osp.join(args.root, 'raw')
    tiles = osp.join(args.root, 'tiles')
    print(f'[demo-region] writing a synthetic region to {raw_dir}')
    raw = make_synthetic_region(raw_dir, width=args.tiles_x * TILE + 10,
                                height=args.tiles_y * TILE + 7,
                                seed=args.seed)
    times = {}
    times['convert'] = run(
        [py, 'tools/dataset_converters/rasters2h2crop.py', tiles,
         '--s2', *raw['s2'], '--enmap', raw['enmap'],
         '--parcels', raw['parcels'], '--code-column', raw['code_column'],
         '--prior-parcels', raw['prior_parcels'],
         '--code-map', raw['code_map'], '--taxonomy', raw['taxonomy'],
         '--tile-size', str(TILE), '--split-block', '2',
         '--workers', str(args.workers),
         *(['--overwrite'] if args.overwrite else [])])
    run([py, 'tools/misc/check_dataset.py', tiles])
    os.makedirs(args.work_dir, exist_ok=True)
    stats = compute_band_stats(tiles, 'train')
    config = write_band_stats(stats, args.work_dir,
                              base_config=args.config)[-1]
    overwrite = ['--overwrite'] if args.overwrite else []
    cfg_opts = ['--cfg-options', f'data_root={tiles}']
    times['train'] = run([py, 'tools/train.py', config, '--work-dir',
                          args.work_dir, *overwrite] + cfg_opts)
    best = sorted(glob.glob(osp.join(args.work_dir, 'best_mFscore_*.pth')),
                  key=osp.getmtime)[-1]
    times['test'] = run([py, 'tools/test.py', config, best, '--work-dir',
                         args.work_dir] + cfg_opts)
    pred_dir = osp.join(args.work_dir, 'test_pred')
    out_gpkg = osp.join(args.work_dir, 'parcels_predicted.gpkg')
    times['map'] = run([py, 'tools/infer.py', config, best, '--h5',
                        osp.join(tiles, DATA_LISTS_DIR, 'test.txt'),
                        '--out', pred_dir, '--parcels', raw['parcels'],
                        '--parcels-out', out_gpkg, '--no-progress',
                        *overwrite] + cfg_opts)
    total = time.perf_counter() - start

    with open(osp.join(tiles, REPORT_FILE)) as f:
        report = json.load(f)
    metrics = sorted(glob.glob(osp.join(args.work_dir,
                                        'parcel_metrics_*.json')),
                     key=osp.getmtime)
    print('\n[demo-region] summary')
    print(f'  conversion: {report["tiles_written"]} tiles, '
          f'{report["tiles_per_second"]} tiles/s '
          f'({report["workers"]} workers), splits {report["splits"]}')
    if metrics:
        with open(metrics[-1]) as f:
            parcel = json.load(f)['metrics']
        print('  parcel-level (test): ' + ', '.join(
            f'{lv} acc {parcel[f"{lv}/accuracy"]} / mF '
            f'{parcel[f"{lv}/mFscore"]}' for lv in LEVELS))
    print(f'  maps: {pred_dir} (GeoTIFF per test tile, mosaic); parcels '
          f'with predictions: {out_gpkg}')
    print('  seconds: ' + ', '.join(f'{k} {v:.0f}' for k, v in
                                    times.items()) + f', total {total:.0f}')


if __name__ == '__main__':
    main()
