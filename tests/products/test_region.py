"""Products + parcels -> tiles (prepare_region) and products -> map (infer)."""
import dataclasses
import json
import os.path as osp
import sys

import numpy as np
import pytest
import rasterio
from affine import Affine

from h2crop.constants import (
    ENMAP_BANDS,
    NUM_MONTHS,
    S2_BAND_NAMES,
    S2_BANDS,
    TAXONOMY_FILE,
)
from h2crop.datasets.checker import check_dataset
from h2crop.datasets.converters.synthetic_region import make_synthetic_region
from h2crop.geo import RasterGrid, enmap_grid, read_grid
from h2crop.products import ProductError, prepare_region
from h2crop.products.synthetic import write_synthetic_products
from h2crop.taxonomy import load_taxonomy

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TILE = 24
NOISE = 30.0  # per-acquisition noise of the synthetic products


@pytest.fixture(scope='module')
def products(tmp_path_factory):
    root = tmp_path_factory.mktemp('products_region')
    region = make_synthetic_region(str(root / 'raw'), width=96, height=96,
                                   parcel_size=110.0, seed=1)
    prods = write_synthetic_products(str(root / 'products'), region, seed=1)
    prods['region'] = region
    return prods


def _prepare(prods, out, **kw):
    args = dict(code_column=prods['code_column'], code_map=prods['code_map'],
                prior_parcels=prods['prior_parcels'], tile_size=TILE,
                convert_options=dict(split_block=1, min_valid=0.0))
    args.update(kw)
    return prepare_region(out, [prods['s2']], [prods['enmap']],
                          prods['parcels'], prods['taxonomy'], **args)


@pytest.fixture(scope='module')
def prepared(products, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('prepared') / 'region')
    messages = []
    result = _prepare(products, out, log=messages.append)
    return out, result, messages


def test_products_become_tiles_that_pass_the_check(products, prepared):
    out, result, messages = prepared
    root = result['data_root']
    assert check_dataset(root) == []
    assert result['tiles']['tiles_written'] == (96 // TILE) ** 2
    assert [m.split(':')[0] for m in messages if m.startswith('stage')] == [
        'stage s2', 'stage enmap', 'stage tiles', 'stage stats',
        'stage prior']
    # the composites: the months' true reflectance where a day was clear
    truth = products['region']['s2']
    grid = read_grid(result['s2'][0])
    assert grid.same_as(read_grid(truth[0]))  # EnMAP covers the region
    assert len(result['s2']) == NUM_MONTHS
    raw = osp.join(out, 's2', 's2_2023_07.tif')
    with rasterio.open(raw) as comp, rasterio.open(truth[6]) as ref:
        assert comp.count == S2_BANDS and comp.dtypes[0] == 'int16'
        got = comp.read().astype(float)
        want = ref.read().astype(float)
        clear = comp.read_masks(1) > 0
    # a median of clear days (offset removed) is the truth plus noise of
    # at most two draws: within 4 sigma, and unbiased (the 10 m bands;
    # the 20 m ones were block means, resampled back)
    ten = [S2_BAND_NAMES.index(b) for b in ('B2', 'B3', 'B4', 'B8')]
    diff = (got - want)[ten][:, clear]
    assert clear.mean() > 0.8
    assert np.abs(diff).max() < 4 * NOISE * 1.5
    assert abs(diff.mean()) < 3.0
    # gap filling left no hole for the tiles
    for path in result['s2']:
        with rasterio.open(path) as ds:
            assert (ds.read_masks(1) > 0).all()
    # the cube lies on the 30 m grid aligned to the composites
    with rasterio.open(result['enmap']) as cube:
        assert cube.count == ENMAP_BANDS
        assert RasterGrid.from_dataset(cube).same_as(enmap_grid(grid))
        assert (cube.read_masks(1) > 0).all()  # the early product fills
    # last year's parcels as the prior raster, as the tiles' prior rows
    import h5py
    with rasterio.open(result['prior']) as ds:
        prior = ds.read()  # (4, H, W)
        assert read_grid(result['prior']).same_as(grid)
    sid = open(osp.join(root, 'data_lists', 'train.txt')).read().split()[0]
    with h5py.File(osp.join(root, 'h5_data', sid + '.h5')) as h5:
        tile_prior = h5['priors'][()] if 'priors' in h5 else h5['prior'][()]
        transform = h5.attrs['transform']
    col = int(round((transform[2] - grid.transform.c) / 10))
    row = int(round((grid.transform.f - transform[5]) / 10))
    np.testing.assert_array_equal(
        prior[:, row:row + TILE, col:col + TILE], tile_prior)
    # the taxonomy and the trainable config
    tax = load_taxonomy(osp.join(root, TAXONOMY_FILE))
    assert tax.digest() == load_taxonomy(products['taxonomy']).digest()
    from mmengine.config import Config
    cfg = Config.fromfile(result['config'])
    assert cfg.data_root == osp.abspath(root)
    assert len(cfg.norm_mean['s2']) == S2_BANDS
    assert len(cfg.norm_mean['enmap']) == ENMAP_BANDS


def test_a_second_run_skips_every_stage_and_options_are_checked(
        products, prepared):
    out, _, _ = prepared
    again = _prepare(products, out)
    assert again['skipped'] == ['s2', 'enmap', 'tiles', 'stats', 'prior']
    # another tile size: the tiles stage would replace user files
    with pytest.raises(ProductError, match=r'stage tiles: .* option '
                       r"tile_size \(24 -> 48\).*--overwrite"):
        _prepare(products, out, tile_size=48)


def test_overwrite_remakes_only_the_stages_that_changed(products,
                                                         tmp_path):
    out = str(tmp_path / 'region')
    _prepare(products, out)
    redone = _prepare(products, out, tile_size=48, overwrite=True)
    assert redone['skipped'] == ['s2', 'enmap', 'prior']
    assert redone['tiles']['tiles_written'] == 4  # 96 x 96 px: 2 x 2


def test_cli_like_checkpoint_takes_taxonomy_and_tile_size(
        products, tiny_model_files, tmp_path, capsys):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import prepare_region as tool
    cfg_path, ckpt, data_root = tiny_model_files
    base = [str(tmp_path / 'r'), '--s2-products', products['s2'],
            '--enmap-products', products['enmap'],
            '--parcels', products['parcels'],
            '--code-column', products['code_column'],
            '--code-map', products['code_map'], '--split-block', '1',
            '--min-valid', '0', '--no-progress',
            '--like-checkpoint', ckpt]
    assert tool.main(base + ['--tile-size', '24']) == 2
    assert "differs from the checkpoint's tile size 96" in \
        capsys.readouterr().err
    # the 96 px region holds one 96 px tile: converted, then the check
    # stops the run (no val / test tile to train with)
    assert tool.main(base) == 2
    assert 'val.txt: -: split list is empty' in capsys.readouterr().err
    root = str(tmp_path / 'r' / 'tiles')
    trained = load_taxonomy(osp.join(data_root, TAXONOMY_FILE)).digest()
    assert load_taxonomy(osp.join(root, TAXONOMY_FILE)).digest() == trained
    with open(osp.join(root, 'conversion_report.json')) as f:
        report = json.load(f)
    assert report['tile_size'] == 96 and report['tiles_written'] == 1


def test_infer_maps_products_without_tiles(products, tiny_model_files,
                                           tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import infer
    cfg_path, ckpt, _ = tiny_model_files
    grid = read_grid(products['region']['s2'][0])
    out = str(tmp_path / 'map.tif')
    # last year's declarations as the prior, rasterised on the map's grid
    args = [ckpt, '--s2-products', products['s2'], '--enmap-products',
            products['enmap'], '--prior-parcels', products['prior_parcels'],
            '--prior-code-column', products['code_column'], '--out', out,
            '--no-progress']
    infer.main(args)
    with rasterio.open(out) as ds:
        assert read_grid(out).same_as(grid)
        assert ds.count == 9
    prior = str(tmp_path / 'map_prior.tif')
    assert read_grid(prior).same_as(grid)
    work = str(tmp_path / 'map_inputs')
    # the tiny model reads 6 months: only those were composited
    assert osp.isfile(osp.join(work, 's2', 's2_2023_06_filled.tif'))
    assert not osp.exists(osp.join(work, 's2', 's2_2023_07.tif'))
    assert osp.isfile(osp.join(work, 'enmap', 'enmap_cube.tif'))
    with pytest.raises(SystemExit, match='EnMAP: give --enmap-products'):
        infer.main([ckpt, '--s2-products', products['s2'], '--prior', prior,
                    '--out', str(tmp_path / 'm2.tif'), '--no-progress'])
    # a second run finds the composites and the cube done
    infer.main(args + ['--overwrite'])


def test_no_overlap_between_s2_and_enmap_is_named(products, tmp_path):
    from h2crop.products.enmap import find_enmap_products
    from h2crop.products.region import region_grid
    from h2crop.products.sentinel2 import find_products
    s2 = find_products([products['s2']])
    enmap = find_enmap_products([products['enmap']])
    # the same products 150 km further east
    far = [dataclasses.replace(p, grid=RasterGrid(
        p.grid.crs, p.grid.transform * Affine.translation(5000, 0),
        p.grid.width, p.grid.height)) for p in enmap]
    with pytest.raises(ProductError, match='no EnMAP product overlaps the '
                       'Sentinel-2 grid'):
        region_grid(s2, far)
