r"""Speed and peak memory of streaming scene inference.

Writes two georeferenced scenes of the same width whose heights differ by
``--factor`` (S2 as one file of T x 10 bands, EnMAP on the 30 m grid, a
4-band prior; random values: speed and memory do not depend on them), maps
each one in a fresh subprocess (so that its peak RSS is its own) and
reports pixels/s and peak RSS. Streaming makes the peak RSS of the taller
scene close to the shorter one's.

Example::

    python tools/analysis_tools/benchmark_inference.py \
        configs/demo/h2crop_demo_s2_h_p.py --width 384 --height 192
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from h2crop.constants import ENMAP_BANDS, ENMAP_SCALE, NUM_LEVELS, S2_BANDS  # noqa: E402


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', nargs='?', help='weights (default: '
                        'random; speed and memory do not depend on them)')
    parser.add_argument('--width', type=int, default=384,
                        help='width of both scenes in S2 pixels, a multiple '
                        'of 3 (default: %(default)s)')
    parser.add_argument('--height', type=int, default=192,
                        help='height of the shorter scene (default: '
                        '%(default)s)')
    parser.add_argument('--factor', type=int, default=4,
                        help='height ratio of the taller scene (default: '
                        '%(default)s)')
    parser.add_argument('--months', type=int, default=12,
                        help='S2 months written into the scenes (at least '
                        "the model's; default: %(default)s)")
    parser.add_argument('--batch-size', type=int, default=4,
                        help='windows per forward pass (default: '
                        '%(default)s)')
    parser.add_argument('--device', default='cpu',
                        help='device of the model: cpu, cuda, cuda:1 '
                        '(default: %(default)s)')
    parser.add_argument('--work-dir', help='folder for the scenes and maps '
                        '(default: a temporary folder)')
    parser.add_argument('--out', help='also write the results as JSON here')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='config overrides (key=value), e.g. '
                        'taxonomy=data/demo/cascade_labels.csv (default: '
                        'none)')
    parser.add_argument('--child', nargs=3, metavar=('S2', 'ENMAP', 'PRIOR'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_random_scene(folder: str, width: int, height: int, months: int,
                       seed: int = 0) -> List[str]:
    """S2 (months x 10 bands), EnMAP and prior GeoTIFFs of random values.

    They are written in row blocks (no full-scene array in memory).
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from h2crop.geo import RasterGrid, enmap_grid
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    grid = RasterGrid(rasterio.crs.CRS.from_epsg(32633),
                      Affine(10, 0, 500003.7, 0, -10, 5300007.2), width,
                      height)
    coarse = enmap_grid(grid)
    specs = [('s2.tif', grid, months * S2_BANDS, 'int16', (100, 5000)),
             ('enmap.tif', coarse, ENMAP_BANDS, 'int16', (100, 5000)),
             ('prior.tif', grid, NUM_LEVELS, 'uint8', (0, 7))]
    paths = []
    for name, g, bands, dtype, (lo, hi) in specs:
        path = osp.join(folder, name)
        with rasterio.open(path, 'w', driver='GTiff', width=g.width,
                           height=g.height, count=bands, dtype=dtype,
                           crs=g.crs, transform=g.transform, tiled=True,
                           photometric='MINISBLACK') as dst:
            for row in range(0, g.height, 64):
                n = min(64, g.height - row)
                block = rng.integers(lo, hi, (bands, n, g.width))
                dst.write(block.astype(dtype), window=Window(0, row, g.width,
                                                             n))
        paths.append(path)
    return paths


def child(args: argparse.Namespace) -> None:
    """Map one scene and write pixels/s and peak RSS as JSON."""
    import torch
    from mmengine.config import DictAction

    from h2crop.apis import init_model
    from h2crop.mapping.scene import SceneInputs, SceneMapper
    overrides = {}
    for item in args.cfg_options:
        key, value = item.split('=', 1)
        overrides[key] = DictAction._parse_iterable(value)
    torch.manual_seed(0)
    model = init_model(args.config, args.checkpoint, args.device,
                       overrides or None)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    s2, enmap, prior = args.child
    out = osp.join(osp.dirname(s2), 'map.tif')
    mapper = SceneMapper(model, batch_size=args.batch_size)
    start = time.perf_counter()
    info = mapper.map_scene(SceneInputs([s2], enmap, prior), out,
                            overwrite=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pixels = info['width'] * info['height']
    with open(args.child_out, 'w') as f:
        json.dump(dict(width=info['width'], height=info['height'],
                       seconds=seconds, pixels_per_s=pixels / seconds,
                       peak_rss_mb=peak / 1024,
                       rss_after_model_mb=rss_model / 1024), f)


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    if args.height % ENMAP_SCALE or args.width % ENMAP_SCALE:
        raise SystemExit(f'--width and --height must be multiples of '
                         f'{ENMAP_SCALE}')
    work = args.work_dir or tempfile.mkdtemp(prefix='h2crop_bench_')
    results = {}
    for name, height in (('short', args.height),
                         ('tall', args.height * args.factor)):
        folder = osp.join(work, f'{name}_{args.width}x{height}')
        paths = write_random_scene(folder, args.width, height, args.months)
        report = osp.join(folder, 'result.json')
        cmd = [sys.executable, osp.abspath(__file__), args.config]
        if args.checkpoint:
            cmd.append(args.checkpoint)
        cmd += ['--child', *paths, '--child-out', report, '--device',
                args.device, '--batch-size', str(args.batch_size)]
        if args.cfg_options:
            cmd += ['--cfg-options', *args.cfg_options]
        subprocess.run(cmd, check=True, env=dict(os.environ,
                                                 PYTHONPATH=ROOT))
        with open(report) as f:
            results[name] = json.load(f)
    print(f'{"scene":>6} {"W x H":>12} {"s":>8} {"px/s":>9} '
          f'{"peak RSS MB":>12}')
    for name, r in results.items():
        print(f'{name:>6} {r["width"]:>5} x {r["height"]:<5} '
              f'{r["seconds"]:8.1f} {r["pixels_per_s"]:9.0f} '
              f'{r["peak_rss_mb"]:12.0f}')
    ratio = results['tall']['peak_rss_mb'] / results['short']['peak_rss_mb']
    print(f'peak RSS tall / short: {ratio:.3f} (height x{args.factor})')
    results['rss_ratio'] = ratio
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
