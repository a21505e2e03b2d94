r"""Speed and peak memory of the product stages (S2 composites, EnMAP cube).

Writes synthetic L2A products (folders of band COGs named like Earth Search
products, 10 m and 20 m bands, SCL, offset tags) for two areas, one
``--factor`` times larger (its sides sqrt(factor) times longer), composites
each in a fresh subprocess (so that its peak RSS is its own) and reports
composites per second, megapixels per second and peak RSS. Compositing
works chunk by chunk, so the larger area's peak RSS stays close to the
smaller one's.

With ``--stage enmap`` it writes one 224-band EnMAP L2A product in UTM
zone 31N per area and builds the 218-band cube of a UTM 32N Sentinel-2 grid
of ``--size`` 10 m pixels (so every block is warped), reporting cube
pixels per second and peak RSS the same way.

Example::

    python tools/analysis_tools/benchmark_products.py --size 1024 \
        --factor 4 --products 4 --months 2 --out bench.json
    python tools/analysis_tools/benchmark_products.py --stage enmap \
        --size 1470 --factor 4
"""
import argparse
import datetime as dt
import json
import math
import os
import os.path as osp
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from h2crop.products.s2_metadata import (  # noqa: E402
    NATIVE_RESOLUTION,
    PRODUCT_ASSETS,
    SCL,
)
from h2crop.products.sentinel2 import CHUNK_SIZE  # noqa: E402

#: Upper-left corner of the synthetic tile (UTM 32N, multiples of 60 m).
ORIGIN = (600000.0, 5100000.0)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--stage', choices=('s2', 'enmap'), default='s2',
                        help='s2: monthly composites; enmap: the EnMAP cube '
                        '(default: s2)')
    parser.add_argument('--size', type=int, default=1024,
                        help='side (10 m px) of the smaller area, a multiple '
                        'of 2 (default: 1024)')
    parser.add_argument('--factor', type=int, default=4,
                        help='area ratio of the larger area, a square '
                        'number (default: 4)')
    parser.add_argument('--products', type=int, default=4,
                        help='products per month (default: 4)')
    parser.add_argument('--months', type=int, default=2,
                        help='months composited (default: 2)')
    parser.add_argument('--chunk-size', type=int, default=CHUNK_SIZE,
                        help=f'chunk side (default: {CHUNK_SIZE})')
    parser.add_argument('--workers', type=int, default=2,
                        help='dask workers (default: 2)')
    parser.add_argument('--scheduler', default='threads',
                        help='dask scheduler (default: threads)')
    parser.add_argument('--work-dir', help='folder for products and outputs '
                        '(default: a temporary folder, removed after)')
    parser.add_argument('--out', help='also write the results as JSON here '
                        '(default: none)')
    parser.add_argument('--child-stage', help=argparse.SUPPRESS)
    parser.add_argument('--child-write', help=argparse.SUPPRESS)
    parser.add_argument('--child', nargs=2, metavar=('PRODUCTS', 'OUT'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_products(folder: str, side: int, products: int, months: int,
                   seed: int = 0) -> List[str]:
    """Band-COG folders of ``products`` x ``months`` acquisitions.

    Written in row blocks (no full-area array in memory): smooth fields
    plus noise, DN = reflectance + 1000 with the matching offset tags, SCL
    with 30 % cloud.
    """
    import rasterio
    from affine import Affine
    from rasterio.shutil import copy as raster_copy
    from rasterio.windows import Window
    rng = np.random.default_rng(seed)
    paths = []
    for m in range(months):
        for p in range(products):
            when = dt.datetime(2023, m + 1, 3 + 7 * p)
            name = f'S2B_32TQM_{when:%Y%m%d}_0_L2A'
            prod = osp.join(folder, name)
            os.makedirs(prod, exist_ok=True)
            for band in PRODUCT_ASSETS:
                res = NATIVE_RESOLUTION[band]
                n = side * 10 // res
                tmp = osp.join(prod, f'.{band}.tmp.tif')
                dtype = 'uint8' if band == SCL else 'uint16'
                with rasterio.open(
                        tmp, 'w', driver='GTiff', width=n, height=n,
                        count=1, dtype=dtype, crs='EPSG:32632',
                        transform=Affine(res, 0, ORIGIN[0], 0, -res,
                                         ORIGIN[1]),
                        nodata=0, tiled=True) as dst:
                    if band != SCL:
                        dst.scales, dst.offsets = (1e-4, ), (-0.1, )
                    for row in range(0, n, 256):
                        h = min(256, n - row)
                        if band == SCL:
                            block = rng.choice(
                                np.array([4, 5, 8, 9, 3], np.uint8),
                                size=(h, n), p=[.5, .2, .1, .1, .1])
                        else:
                            yy = np.arange(row, row + h)[:, None]
                            xx = np.arange(n)[None, :]
                            field = 2000 + 1500 * np.sin(xx / 37.0) * \
                                np.cos(yy / 53.0)
                            block = (field + rng.normal(0, 100, (h, n))
                                     + 1000).clip(1, 10000).astype(dtype)
                        dst.write(block, 1, window=Window(0, row, n, h))
                raster_copy(tmp, osp.join(prod, f'{band}.tif'), driver='COG',
                            compress='deflate')
                os.remove(tmp)
            paths.append(prod)
    return paths


def s2_grid_of(side: int):
    """The EnMAP benchmark's S2 grid: UTM 32N, ``side`` 10 m pixels."""
    from affine import Affine
    from rasterio.crs import CRS

    from h2crop.geo import RasterGrid
    return RasterGrid(CRS.from_epsg(32632),
                      Affine(10.0, 0, ORIGIN[0], 0, -10.0, ORIGIN[1]),
                      side, side)


def write_enmap_product(folder: str, side: int, seed: int = 0) -> str:
    """One EnMAP L2A product (UTM 31N) covering :func:`s2_grid_of`."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    from h2crop.geo import RasterGrid, enmap_grid
    from h2crop.products.synthetic_enmap import default_dn, make_l2a_product
    cube = enmap_grid(s2_grid_of(side))
    other = CRS.from_epsg(32631)
    left, bottom, right, top = transform_bounds(cube.crs, other,
                                                *cube.bounds())
    grid = RasterGrid.from_bounds(other, (left - 90, bottom - 90, right + 90,
                                          top + 90), 30.0)
    os.makedirs(folder, exist_ok=True)
    make_l2a_product(folder, grid, dt.datetime(2023, 6, 15, 10, 42),
                     dn=default_dn(grid.height, grid.width, seed=seed))
    return folder


def child_enmap(args: argparse.Namespace) -> None:
    """Build one cube and write speed and peak RSS as JSON."""
    from mmengine.logging import MMLogger

    from h2crop.products import build_enmap_cube
    MMLogger.get_current_instance()  # mmengine's logger imports torch
    products, out = args.child
    grid = s2_grid_of(args.size)
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    build_enmap_cube([products], grid, osp.join(out, 'enmap_cube.tif'),
                     overwrite=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    side = -(-args.size // 3)
    with open(args.child_out, 'w') as f:
        json.dump(dict(width=side, height=side, composites=1,
                       seconds=seconds, composites_per_s=1 / seconds,
                       megapixels_per_s=side * side / seconds / 1e6,
                       peak_rss_mb=peak / 1024,
                       rss_after_imports_mb=rss_start / 1024,
                       rss_growth_mb=(peak - rss_start) / 1024), f)


def child(args: argparse.Namespace) -> None:
    """Composite one area and write speed and peak RSS as JSON."""
    import odc.stac  # noqa: F401  (imports counted in the baseline)
    from mmengine.logging import MMLogger

    from h2crop.products import build_monthly_composites
    MMLogger.get_current_instance()  # mmengine's logger imports torch
    products, out = args.child
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    report = build_monthly_composites(
        [products], out, 2023, months=list(range(1, args.months + 1)),
        chunk_size=args.chunk_size, workers=args.workers,
        scheduler=args.scheduler, overwrite=True, log=lambda _: None)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    grid = report['grid']
    pixels = grid['width'] * grid['height'] * len(report['months'])
    with open(args.child_out, 'w') as f:
        json.dump(dict(width=grid['width'], height=grid['height'],
                       composites=len(report['months']), seconds=seconds,
                       composites_per_s=len(report['months']) / seconds,
                       megapixels_per_s=pixels / seconds / 1e6,
                       peak_rss_mb=peak / 1024,
                       rss_after_imports_mb=rss_start / 1024,
                       rss_growth_mb=(peak - rss_start) / 1024), f)


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    if args.child_write:
        write_enmap_product(args.child_write, args.size)
        return {}
    if args.child:
        (child_enmap if args.child_stage == 'enmap' else child)(args)
        return {}
    scale = math.isqrt(args.factor)
    if scale * scale != args.factor or args.size % 2:
        raise SystemExit('--factor must be a square number and --size even')
    work = args.work_dir or tempfile.mkdtemp(prefix='h2crop_s2bench_')
    results = {}
    try:
        for name, side in (('small', args.size),
                           ('large', args.size * scale)):
            folder = osp.join(work, f'{name}_{side}')
            if args.stage == 'enmap':
                # in its own process: peak RSS is inherited across exec, so
                # the measured child must not start from the writer's
                subprocess.run([sys.executable, osp.abspath(__file__),
                                '--child-write', osp.join(folder, 'products'),
                                '--size', str(side)], check=True,
                               env=dict(os.environ, PYTHONPATH=ROOT))
            else:
                write_products(osp.join(folder, 'products'), side,
                               args.products, args.months)
            report = osp.join(folder, 'result.json')
            os.makedirs(osp.join(folder, 'out'), exist_ok=True)
            cmd = [sys.executable, osp.abspath(__file__), '--child',
                   osp.join(folder, 'products'), osp.join(folder, 'out'),
                   '--child-out', report, '--months', str(args.months),
                   '--chunk-size', str(args.chunk_size), '--workers',
                   str(args.workers), '--scheduler', args.scheduler,
                   '--child-stage', args.stage, '--size', str(side)]
            subprocess.run(cmd, check=True,
                           env=dict(os.environ, PYTHONPATH=ROOT))
            with open(report) as f:
                results[name] = json.load(f)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f'{"area":>6} {"W x H":>13} {"s":>7} {"comp/s":>7} {"MP/s":>6} '
          f'{"peak RSS MB":>12} {"after imports":>14} {"growth":>7}')
    for name, r in results.items():
        print(f'{name:>6} {r["width"]:>6} x {r["height"]:<5} '
              f'{r["seconds"]:7.1f} {r["composites_per_s"]:7.3f} '
              f'{r["megapixels_per_s"]:6.2f} {r["peak_rss_mb"]:12.0f} '
              f'{r["rss_after_imports_mb"]:14.0f} '
              f'{r["rss_growth_mb"]:7.0f}')
    ratio = results['large']['peak_rss_mb'] / results['small']['peak_rss_mb']
    growth = results['large']['rss_growth_mb'] / max(
        results['small']['rss_growth_mb'], 1e-9)
    print(f'peak RSS large / small: {ratio:.3f}, growth above the imports '
          f'large / small: {growth:.3f} (area x{args.factor})')
    results['rss_ratio'] = ratio
    results['rss_growth_ratio'] = growth
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
