"""tools/infer.py on label-free tiles and on a georeferenced scene."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import rasterio

from h2crop.constants import ENMAP, H5_DIR, PRIOR, S2
from h2crop.geo import RasterGrid
from h2crop.mapping.scene import preview_path, sidecar_csv_path
from h2crop.mapping.synthetic_scene import mosaic_tiles, scene_ids, write_scene

from .._ports import free_port

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tools'))
import infer  # noqa: E402


def test_label_free_tiles(tiny_model_files, tmp_path):
    cfg, ckpt, root = tiny_model_files
    folder = tmp_path / 'new_area'
    folder.mkdir()
    for sid in scene_ids(root, 'test')[:2]:
        with h5py.File(osp.join(root, H5_DIR, sid + '.h5')) as fin, \
                h5py.File(folder / (sid + '.h5'), 'w') as fout:
            for key in fin:
                if key != 'label':
                    fin.copy(key, fout)
    out = tmp_path / 'preds'
    args = [cfg, ckpt, '--h5', str(folder), '--out', str(out), '--show',
            '--no-progress']
    infer.main(args)
    names = sorted(os.listdir(out))
    assert len([n for n in names if n.endswith('_pred.h5')]) == 2
    assert len([n for n in names if n.endswith('_pred.png')]) == 2
    with h5py.File(out / names[0]) as h5:
        assert h5['pred'].shape == (4, 96, 96)
        assert h5['pred'].dtype == np.uint8
        assert h5['confidence'].dtype == np.uint8
        assert h5['confidence'][()].max() <= 100
        assert json.loads(h5.attrs['levels']) == [
            'level1', 'level2', 'level3', 'level4']
        assert len(json.loads(h5.attrs['class_names'])['level4']) == 102
    with pytest.raises(SystemExit, match='--overwrite'):
        infer.main(args)
    infer.main(args + ['--overwrite'])


def test_scene_to_cog(tiny_model_files, tmp_path):
    cfg, ckpt, root = tiny_model_files
    mosaic = mosaic_tiles(root, scene_ids(root, 'train'), 1, 2)
    paths = write_scene(str(tmp_path / 'scene'), mosaic, 95, 131, months=6)
    out = str(tmp_path / 'map.tif')
    args = [cfg, ckpt, '--s2', *paths[S2], '--enmap', paths[ENMAP],
            '--prior', paths[PRIOR], '--out', out, '--show',
            '--batch-size', '2', '--cfg-options',
            'model.test_cfg.decode=consistent']
    infer.main(args)
    with rasterio.open(out) as ds:
        assert RasterGrid.from_dataset(ds).same_as(paths['grid'])
        assert ds.tags()['decode'] == 'consistent'
        tags = ds.tags()
        pred = ds.read([1, 2, 3, 4])
    from h2crop.taxonomy import load_taxonomy
    tax = load_taxonomy(osp.join(root, 'cascade_labels.csv'))
    assert tax.is_consistent(pred)
    # the map states the model that made it
    assert tags['taxonomy_digest'] == tax.digest()
    assert tags['checkpoint'] == osp.abspath(ckpt)
    assert tags['config'] == osp.abspath(cfg)
    with open(sidecar_csv_path(out), encoding='utf-8') as f:
        header, first = f.readline().strip(), f.readline().strip()
    assert header.endswith(',taxonomy_digest')
    assert first.endswith(',' + tax.digest())
    assert osp.isfile(preview_path(out))
    # every class band has a paletted view with colours and class names
    from h2crop.mapping.styles import level_vrt_path
    from h2crop.visualization.legend import level_palette
    for band, level in enumerate(('level1', 'level2', 'level3', 'level4'),
                                 start=1):
        names = tax.level_names(level)
        with rasterio.open(level_vrt_path(out, level)) as vrt:
            assert RasterGrid.from_dataset(vrt).same_as(paths['grid'])
            assert np.array_equal(vrt.read(1), pred[band - 1])
            cmap = vrt.colormap(1)
            assert cmap[3][:3] == tuple(level_palette(len(names))[3])
            assert vrt.nodata == 255
    with pytest.raises(SystemExit, match='--overwrite'):
        infer.main(args)
    with pytest.raises(SystemExit, match='months'):
        infer.main([cfg, ckpt, '--s2', *paths[S2][:4], '--enmap',
                    paths[ENMAP], '--prior', paths[PRIOR], '--out',
                    str(tmp_path / 'm2.tif')])


@pytest.mark.skipif(shutil.which('torchrun') is None and not osp.exists(
    osp.join(osp.dirname(sys.executable), 'torchrun')),
    reason='torchrun not installed')
def test_two_processes_give_the_same_map(tiny_model_files,
                                         tmp_path):
    cfg, ckpt, root = tiny_model_files
    mosaic = mosaic_tiles(root, scene_ids(root, 'train'), 2, 1)
    paths = write_scene(str(tmp_path / 'scene'), mosaic, 189, 60, months=6)
    common = [cfg, ckpt, '--s2', *paths[S2], '--enmap', paths[ENMAP],
              '--prior', paths[PRIOR], '--no-progress']
    one = str(tmp_path / 'one.tif')
    infer.main(common + ['--out', one])
    two = str(tmp_path / 'two.tif')
    torchrun = osp.join(osp.dirname(sys.executable), 'torchrun')
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [torchrun, '--nproc_per_node', '2', '--master_port', str(free_port()),
         osp.join(REPO, 'tools', 'infer.py'), *common, '--out', two,
         '--launcher', 'pytorch'], env=env, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with rasterio.open(one) as a, rasterio.open(two) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.transform == b.transform and a.tags() == b.tags()
    assert not [n for n in os.listdir(tmp_path) if 'part' in n]


def test_georeferenced_tiles_give_geotiffs_and_parcels(tiny_model_files,
                                                       tmp_path):
    import pyogrio

    from h2crop.datasets.converters.convert import convert_region
    from h2crop.datasets.converters.synthetic_region import (
        make_synthetic_region,
    )
    from h2crop.mapping.geotiff import read_tile_georeference
    cfg, ckpt, _ = tiny_model_files
    tile = 24
    raw = make_synthetic_region(str(tmp_path / 'raw'), width=3 * tile,
                                height=2 * tile, parcel_size=110.0, seed=2)
    tiles = str(tmp_path / 'tiles')
    convert_region(tiles, raw['s2'], raw['enmap'], raw['parcels'],
                   raw['code_column'], raw['taxonomy'],
                   code_map_path=raw['code_map'], tile_size=tile,
                   split_block=1, min_valid=0.0)
    out = tmp_path / 'preds'
    args = [cfg, ckpt, '--h5', osp.join(tiles, H5_DIR), '--out', str(out),
            '--parcels', raw['parcels'], '--no-progress']
    infer.main(args)
    h5s = sorted(f for f in os.listdir(osp.join(tiles, H5_DIR)))
    assert h5s
    for name in h5s:
        sid = name[:-len('.h5')]
        crs, transform = read_tile_georeference(
            osp.join(tiles, H5_DIR, name))
        with rasterio.open(out / f'{sid}_pred.tif') as ds:
            # the prediction lands where the tile was cut
            assert ds.crs == crs and ds.transform == transform
            assert ds.descriptions[:4] == ('level1', 'level2', 'level3',
                                          'level4')
    gpkg = str(out / infer.PARCELS_IN_FOLDER)
    assert pyogrio.read_info(gpkg)['features'] == \
        pyogrio.read_info(raw['parcels'])['features']
    fields = list(pyogrio.read_info(gpkg)['fields'])
    assert {'level1_id', 'level4_name', 'level4_share'} <= set(fields)
    layer_meta = pyogrio.read_info(gpkg)['layer_metadata']
    assert layer_meta['checkpoint'] == osp.abspath(ckpt)
    assert layer_meta['taxonomy_digest'] == infer_digest(cfg, ckpt)
    with pytest.raises(SystemExit, match='--overwrite'):
        infer.main(args)


def infer_digest(cfg: str, ckpt: str) -> str:
    from h2crop.apis import init_model
    return init_model(cfg, ckpt).taxonomy.digest()


def test_batch_size_sets_the_model_option_and_amp_is_for_scenes():
    args = infer.parse_args(['c.py', 'k.pth', '--s2', 'a.tif', '--out',
                             'm.tif', '--batch-size', '3'])
    assert args.cfg_options['model.test_cfg.batch_size'] == 3
    with pytest.raises(SystemExit):
        infer.parse_args(['c.py', 'k.pth', '--s2', 'a.tif', '--out', 'm.tif',
                          '--batch-size', '3', '--cfg-options',
                          'model.test_cfg.batch_size=2'])
    with pytest.raises(SystemExit):
        infer.parse_args(['c.py', 'k.pth', '--h5', 'tiles', '--out', 'o',
                          '--amp'])
