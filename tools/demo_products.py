"""End-to-end "from downloaded products" demo on a synthetic region (CPU).

1. writes a synthetic region and turns it into what a user downloads: a
   year of Sentinel-2 L2A SAFE products (2 a month, cloudy, baseline
   05.09 with its +1000 offset), two EnMAP L2A product folders and the
   parcel declarations of this and last year
   (:mod:`h2crop.products.synthetic`);
2. ``tools/prepare_region.py``: products + parcels -> monthly composites ->
   EnMAP cube -> 96 px tiles + band statistics config, checked;
3. ``tools/train.py`` on the tiles, ``tools/test.py`` on the test split;
4. ``tools/infer.py CKPT --s2-products ... --enmap-products ...``: maps the
   whole area straight from the products (the composites of step 2 are
   made again in the map's own inputs folder) into a COG with a preview.

Usage: ``make demo-products`` (replaces its previous run) or
``python tools/demo_products.py [--overwrite]``.
"""
import argparse
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from h2crop.datasets.converters.synthetic_region import make_synthetic_region  # noqa: E402
from h2crop.products.synthetic import write_synthetic_products  # noqa: E402

TILE = 96


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--root', default='data/products_demo',
                   help='folder for raw/ (the synthetic region), products/ '
                   '(the downloads) and region/ (prepare_region\'s output) '
                   '(default: data/products_demo)')
    p.add_argument('--work-dir', default='work_dirs/products_demo',
                   help='training run and maps (default: '
                   'work_dirs/products_demo)')
    p.add_argument('--tiles-x', type=int, default=6,
                   help='region width in 96 px tiles (default: 6)')
    p.add_argument('--tiles-y', type=int, default=4,
                   help='region height in 96 px tiles (default: 4)')
    p.add_argument('--workers', type=int, default=2,
                   help='processes / dask workers of the stages (default: '
                   '2)')
    p.add_argument('--seed', type=int, default=0,
                   help='seed of the synthetic region (default: 0)')
    p.add_argument('--epochs', type=int, default=10,
                   help='training epochs (default: 10)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace the products, tiles, run and map of a '
                   'previous demo (default: refuse)')
    return p.parse_args()


def run(cmd: List[str]) -> float:
    """Run a command from the repository root; return its seconds."""
    print('[demo-products] $ ' + ' '.join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args()
    py = sys.executable
    start = time.perf_counter()
    if osp.exists(args.root) and os.listdir(args.root):
        if not args.overwrite:
            raise SystemExit(f'error: {args.root} holds a previous demo; '
                             'pass --overwrite to replace it')
        shutil.rmtree(args.root)
    times = {}
    t0 = time.perf_counter()
    raw = make_synthetic_region(osp.join(args.root, 'raw'),
                                width=args.tiles_x * TILE + 12,
                                height=args.tiles_y * TILE + 8,
                                seed=args.seed)
    prods = write_synthetic_products(osp.join(args.root, 'products'), raw,
                                     seed=args.seed)
    times['write products'] = time.perf_counter() - t0
    region = osp.join(args.root, 'region')
    times['prepare_region'] = run(
        [py, 'tools/prepare_region.py', region,
         '--s2-products', prods['s2'], '--enmap-products', prods['enmap'],
         '--parcels', prods['parcels'], '--code-column',
         prods['code_column'], '--code-map', prods['code_map'],
         '--prior-parcels', prods['prior_parcels'],
         '--taxonomy', prods['taxonomy'], '--tile-size', str(TILE),
         '--split-block', '2', '--workers', str(args.workers),
         '--no-progress'])
    config = osp.join(region, 'tiles', 'band_stats.py')
    overwrite = ['--overwrite'] if args.overwrite else []
    epochs = ['--cfg-options', f'max_epochs={args.epochs}']
    times['train'] = run([py, 'tools/train.py', config, '--work-dir',
                          args.work_dir, *overwrite] + epochs)
    best = sorted(glob.glob(osp.join(args.work_dir, 'best_mFscore_*.pth')),
                  key=osp.getmtime)[-1]
    times['test'] = run([py, 'tools/test.py', config, best, '--work-dir',
                         args.work_dir] + epochs)
    out = osp.join(args.work_dir, 'map.tif')
    times['map'] = run(
        [py, 'tools/infer.py', best, '--s2-products', prods['s2'],
         '--enmap-products', prods['enmap'], '--prior',
         osp.join(region, 'prior.tif'), '--out', out, '--show',
         '--no-progress', *overwrite])
    total = time.perf_counter() - start
    print('\n[demo-products] summary')
    print(f'  tiles: {osp.join(region, "tiles")}; run: {args.work_dir}; '
          f'map: {out} (+ preview, classes CSV, level VRTs)')
    print('  seconds: ' + ', '.join(f'{k} {v:.0f}' for k, v in
                                    times.items()) + f', total {total:.0f}')


if __name__ == '__main__':
    main()
