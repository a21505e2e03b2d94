"""Region conversion on a synthetic UTM region (rasters + GeoPackages)."""
import csv
import json
import logging
import os.path as osp

import h5py
import numpy as np
import pytest
import rasterio
import shapely
from mmengine.logging import MMLogger
from rasterio.windows import from_bounds

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP_SCALE,
    H5_DIR,
    LEVELS,
    SPLITS,
)
from h2crop.datasets.checker import check_dataset
from h2crop.datasets.converters import convert_region
from h2crop.datasets.converters.convert import (
    OVERLAPS_FILE,
    REPORT_FILE,
    UNMAPPED_FILE,
)
from h2crop.datasets.converters.split import block_of, blocked_split
from h2crop.datasets.converters.synthetic_region import (
    UNMAPPED_CODE,
    make_synthetic_region,
)
from h2crop.datasets.h2crop_dataset import H2CropDataset
from h2crop.datasets.h5io import LABEL, read_tile
from h2crop.mapping.geotiff import read_tile_georeference, write_tile_geotiff
from h2crop.taxonomy import load_taxonomy

TILE = 24
BLOCK = 2


def _convert(raw, out, **kwargs):
    return convert_region(out, raw['s2'], raw['enmap'], raw['parcels'],
                          raw['code_column'], raw['taxonomy'],
                          prior_parcels_path=raw['prior_parcels'],
                          code_map_path=raw['code_map'], tile_size=TILE,
                          split_block=BLOCK, **kwargs)


@pytest.fixture(scope='module')
def region(tmp_path_factory):
    """6 x 4 tiles of 24 px; the last tile column is mostly nodata."""
    root = tmp_path_factory.mktemp('region')
    raw = make_synthetic_region(str(root / 'raw'), width=6 * TILE + 5,
                                height=4 * TILE + 2, parcel_size=110.0,
                                nodata_columns=TILE - 4, seed=1)
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        report = _convert(raw, str(root / 'out'))
    finally:
        logger.removeHandler(handler)
    return dict(raw=raw, out=str(root / 'out'), report=report,
                log=[r.getMessage() for r in records])


def _tiles(region):
    out = region['out']
    for tile in region['report']['tiles']:
        path = osp.join(out, H5_DIR, tile['id'] + '.h5')
        with h5py.File(path, 'r') as f:
            yield tile, path, f['parcel_id'][()], dict(f.attrs)


def test_labels_and_priors_equal_the_polygons_classes(region):
    raw = region['raw']
    tax = load_taxonomy(raw['taxonomy'])
    fine = len(LEVELS) - 1
    paths = np.stack([tax.ancestor_map(fine, k) for k in range(len(LEVELS))],
                     axis=1)  # (N4+1, 4)
    geoms = raw['geometries']
    union = shapely.union_all(geoms)
    leaf = np.concatenate([[0], raw['leaf']])  # parcel id -> level-4 id
    prior_leaf = np.concatenate([[0], raw['prior_leaf']])
    tiles_of = {}
    for tile, path, pid, _attrs in _tiles(region):
        arrays = read_tile(path, ('s2', 'enmap', 'prior'))
        crs, transform = read_tile_georeference(path)
        rows, cols = np.indices(pid.shape)
        xs, ys = transform @ (cols + 0.5, rows + 0.5)  # pixel centres
        for k in range(len(LEVELS)):
            want = paths[leaf[pid], k]
            assert np.array_equal(arrays[LABEL][k], want)
            assert np.array_equal(arrays['prior'][k], paths[prior_leaf[pid],
                                                             k])
        inside = pid > 0
        # every labelled pixel centre lies in its polygon, others in none
        for p in np.unique(pid[inside]):
            sel = pid == p
            assert shapely.contains_xy(geoms[p - 1], xs[sel], ys[sel]).all()
        assert not shapely.contains_xy(union, xs[~inside],
                                       ys[~inside]).any()
        for p in np.unique(pid[inside]).tolist():
            tiles_of.setdefault(p, set()).add(tile['id'])
    # parcels do cross tile borders
    assert sum(len(t) > 1 for t in tiles_of.values()) > 5


def test_unmapped_codes_are_reported_with_counts(region):
    raw = region['raw']
    with open(osp.join(region['out'], UNMAPPED_FILE)) as f:
        rows = list(csv.DictReader(f))
    assert [(r['year'], r['code']) for r in rows] == [('current',
                                                        UNMAPPED_CODE)]
    area = sum(raw['geometries'][i].area for i in raw['unmapped'])
    assert int(rows[0]['parcels']) == len(raw['unmapped']) == 3
    assert float(rows[0]['area']) == pytest.approx(area)
    assert region['report']['unmapped_parcels']['current'] == 3
    assert any(UNMAPPED_CODE in m for m in region['log'])


def test_overlaps_and_skipped_tiles_are_reported(region):
    raw, report = region['raw'], region['report']
    geoms = raw['geometries']
    want = {(i + 1, j + 1) for i in range(len(geoms))
            for j in range(i + 1, len(geoms))
            if geoms[i].intersection(geoms[j]).area > 1e-6}
    assert want  # the generator makes one parcel overlap its neighbours
    with open(osp.join(region['out'], OVERLAPS_FILE)) as f:
        got = {(int(r['parcel_id_a']), int(r['parcel_id_b']))
               for r in csv.DictReader(f) if r['year'] == 'current'}
    assert got == want
    # the last tile column is 20 / 24 nodata: skipped, counted
    assert report['tile_grid'] == [4, 6]
    assert report['tiles_skipped_min_valid'] == 4
    assert report['tiles_written'] == 20
    assert all(t['col'] < 5 for t in report['tiles'])


def test_split_is_blocked_and_passes_the_checker(region):
    out, report = region['out'], region['report']
    split_of = {}
    for name in SPLITS:
        with open(osp.join(out, DATA_LISTS_DIR, name + '.txt')) as f:
            ids = f.read().split()
        assert ids, name
        split_of.update({i: name for i in ids})
    blocks = {}
    for tile in report['tiles']:
        blocks.setdefault(block_of(tile['row'], tile['col'], BLOCK),
                          set()).add(split_of[tile['id']])
    assert all(len(s) == 1 for s in blocks.values())
    assert not check_dataset(out, taxonomy=load_taxonomy(
        osp.join(out, 'cascade_labels.csv')))
    with open(osp.join(out, REPORT_FILE)) as f:
        assert json.load(f)['tiles_written'] == 20


def test_blocked_split_targets_and_errors():
    pos = [(r, c) for r in range(10) for c in range(10)]
    split = blocked_split(pos, 2, 0.2, 0.2, seed=3)
    assert sorted(sum(split.values(), [])) == list(range(100))
    assert 16 <= len(split['val']) <= 24 and 16 <= len(split['test']) <= 24
    for name, idx in split.items():
        for other, idx2 in split.items():
            if name != other:
                assert not ({block_of(*pos[i], 2) for i in idx} &
                            {block_of(*pos[i], 2) for i in idx2})
    with pytest.raises(ValueError, match='leaves no train'):
        blocked_split(pos, 2, 0.5, 0.5)
    with pytest.raises(ValueError, match='block'):
        blocked_split(pos, 0, 0.1, 0.1)


def test_enmap_offset_is_resampled_with_a_warning(region, tmp_path):
    assert any('EnMAP' in m and 'not on the target grid' in m
               for m in region['log'])
    raw = make_synthetic_region(str(tmp_path / 'raw'), width=2 * TILE,
                                height=TILE, parcel_size=110.0,
                                enmap_offset=0.0, seed=2)
    report = _convert(raw, str(tmp_path / 'out'), val_fraction=0.0,
                      test_fraction=0.0)
    tile = report['tiles'][1]
    got = read_tile(osp.join(str(tmp_path / 'out'), H5_DIR,
                             tile['id'] + '.h5'), ('s2', 'enmap'))
    small = TILE // ENMAP_SCALE
    with rasterio.open(raw['enmap']) as ds:  # aligned: read as is
        want = ds.read(window=((0, small), (small, 2 * small)))
    assert np.array_equal(got['enmap'], want)


def test_georeference_round_trip(region, tmp_path):
    raw = region['raw']
    tile, path, pid, attrs = next(
        t for t in _tiles(region) if t[0]['row'] == 2 and t[0]['col'] == 3)
    arrays = read_tile(path, ('s2', ))
    out = write_tile_geotiff(arrays[LABEL], np.full(arrays[LABEL].shape, .5),
                             attrs, str(tmp_path / 'pred.tif'))
    with pytest.raises(FileExistsError):
        write_tile_geotiff(arrays[LABEL], None, attrs, out)
    with rasterio.open(out) as pred, rasterio.open(raw['s2'][0]) as s2:
        assert pred.crs == s2.crs
        win = from_bounds(*pred.bounds, transform=s2.transform)
        assert (round(win.row_off), round(win.col_off)) == (2 * TILE,
                                                            3 * TILE)
        src = s2.read(1, window=win.round_offsets().round_lengths())
        assert np.array_equal(src, arrays['s2'][0, 0])
        assert np.array_equal(pred.read(1), arrays[LABEL][0])
        assert (pred.read(5) == 50).all()
        assert pred.descriptions[:2] == ('level1', 'level2')


def test_dataset_exposes_parcel_ids_and_overwrite_is_refused(region):
    out = region['out']
    ds = H2CropDataset(
        data_root=out, ann_file='data_lists/test.txt',
        taxonomy=osp.join(out, 'cascade_labels.csv'),
        pipeline=[dict(type='LoadH2CropH5'), dict(type='PackH2CropInputs')])
    sample = ds[0]['data_samples']
    with h5py.File(sample.h5_path, 'r') as f:
        want = f['parcel_id'][()]
    assert np.array_equal(sample.gt_parcel_id.data[0].numpy(), want)
    with pytest.raises(FileExistsError, match='--overwrite'):
        _convert(region['raw'], out)
