"""Streaming scene mapping into a COG on the S2 grid."""
import csv
import json

import numpy as np
import pytest
import rasterio

from h2crop.apis import inference_model, init_model
from h2crop.constants import ENMAP, PRIOR, S2
from h2crop.geo import RasterGrid
from h2crop.mapping.scene import (
    NODATA,
    SceneError,
    SceneInputs,
    SceneMapper,
    SceneReader,
    row_strips,
    sidecar_csv_path,
    split_strips,
)
from h2crop.mapping.synthetic_scene import mosaic_tiles, scene_ids, write_scene


@pytest.fixture(scope='module')
def mosaic(tiny_model_files):
    root = tiny_model_files[2]
    return mosaic_tiles(root, scene_ids(root, 'train'), 2, 2)  # 192 x 192


def _inputs(paths):
    return SceneInputs(paths[S2], paths[ENMAP], paths[PRIOR])


def test_map_is_a_cog_on_the_s2_grid(tiny_model_files, mosaic, tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    # 100 x 110: neither a multiple of the 96 px window nor of 3
    paths = write_scene(str(tmp_path / 'scene'), mosaic, 100, 110, months=6)
    out = str(tmp_path / 'map.tif')
    info = SceneMapper(model, batch_size=3).map_scene(_inputs(paths), out)
    with rasterio.open(out) as ds:
        grid = RasterGrid.from_dataset(ds)
        assert grid.same_as(paths['grid'])
        assert ds.count == 9 and ds.dtypes[0] == 'uint8'
        assert ds.descriptions == (
            'level1', 'level2', 'level3', 'level4', 'level1_confidence',
            'level2_confidence', 'level3_confidence', 'level4_confidence',
            'deepest_confident_level')
        assert ds.nodata == NODATA
        assert ds.profile['tiled'] and ds.compression is not None
        assert ds.overviews(1)  # built by the COG driver
        names = json.loads(ds.tags()['level2_class_names'])
        assert names == list(model.taxonomy.level_names('level2'))
        data = ds.read()
    assert (data[:4] < np.array(model.taxonomy.num_classes)[:, None, None]
            ).all()
    assert data[4:8].max() <= 100 and data[8].max() <= 4
    with open(sidecar_csv_path(out)) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(model.taxonomy.num_classes)
    assert info['width'] == 110
    with pytest.raises(FileExistsError, match='--overwrite'):
        SceneMapper(model).map_scene(_inputs(paths), out)
    SceneMapper(model).map_scene(_inputs(paths), out, overwrite=True)


def test_windows_of_whole_tiles_equal_inference_model(tiny_model_files,
                                                      mosaic, tmp_path):
    cfg, ckpt, root = tiny_model_files
    model = init_model(cfg, ckpt, cfg_options={
        'model.test_cfg.stride': 96})
    paths = write_scene(str(tmp_path / 's'), mosaic, per_month=False)
    out = str(tmp_path / 'map.tif')
    SceneMapper(model, batch_size=1).map_scene(_inputs(paths), out)
    with rasterio.open(out) as ds:
        data = ds.read()
    for r in range(2):
        for c in range(2):
            rows, cols = slice(96 * r, 96 * r + 96), slice(96 * c, 96 * c + 96)
            erows = slice(32 * r, 32 * r + 32)
            ecols = slice(32 * c, 32 * c + 32)
            ref = inference_model(model, mosaic[S2][..., rows, cols],
                                  mosaic[ENMAP][:, erows, ecols],
                                  mosaic[PRIOR][:, rows, cols])
            np.testing.assert_array_equal(data[:4, rows, cols], ref['pred'])
            conf = np.round(ref['confidence'] * 100)
            assert np.abs(data[4:8, rows, cols] - conf).max() <= 1


def test_nodata_in_inputs_gives_nodata_out(tiny_model_files, mosaic,
                                           tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 120, 150, months=6,
                        nodata_box=(10, 40, 20, 70))
    out = str(tmp_path / 'map.tif')
    SceneMapper(model).map_scene(_inputs(paths), out)
    with rasterio.open(out) as ds:
        data = ds.read()
    box = np.zeros((120, 150), bool)
    box[10:40, 20:70] = True
    assert (data[:, box] == NODATA).all()
    assert (data[:, ~box] != NODATA).all()


def test_enmap_in_another_crs_is_resampled(tiny_model_files, mosaic,
                                           tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 150, 141, months=6,
                        enmap_crs='EPSG:32632')
    out = str(tmp_path / 'map.tif')
    SceneMapper(model).map_scene(_inputs(paths), out)
    with rasterio.open(out) as ds:
        assert RasterGrid.from_dataset(ds).same_as(paths['grid'])
        inner = ds.read(1)[6:-6, 6:-6]
    assert (inner != NODATA).all()


def test_strip_split_across_ranks_is_identical(tiny_model_files, mosaic,
                                               tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 189, 96, months=6)
    mapper = SceneMapper(model, batch_size=2)
    starts = row_strips(189, 96, 48)
    assert starts == [0, 48, 93]

    def run(first, last):
        rows = {}
        with SceneReader(_inputs(paths), 6, model.modalities,
                         model.levels) as reader:
            mapper.map_rows(reader, first, last,
                            lambda row, bands: rows.update({row: bands}))
        return rows

    whole = run(0, len(starts))
    full = np.concatenate([whole[k] for k in sorted(whole)], axis=1)
    assert full.shape == (9, 189, 96)
    for world in (2, ):
        parts = {}
        for rank in range(world):
            parts.update(run(*split_strips(starts, rank, world)))
        split = np.concatenate([parts[k] for k in sorted(parts)], axis=1)
        np.testing.assert_array_equal(split, full)


def test_inputs_are_checked(tiny_model_files, mosaic, tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 'a'), mosaic, 96, 96, months=6)
    other = write_scene(str(tmp_path / 'b'), mosaic, 96, 99, months=6)
    mixed = list(paths[S2][:5]) + [other[S2][5]]
    with pytest.raises(SceneError, match='s2_month06.tif.*not on the grid'):
        with SceneReader(SceneInputs(mixed, paths[ENMAP], paths[PRIOR]), 6,
                         model.modalities):
            pass
    with pytest.raises(SceneError, match='6 months'):
        with SceneReader(SceneInputs(paths[S2][:5], paths[ENMAP],
                                     paths[PRIOR]), 6, model.modalities):
            pass
    with pytest.raises(SceneError, match='--enmap'):
        with SceneReader(SceneInputs(paths[S2], None, paths[PRIOR]), 6,
                         model.modalities):
            pass


def test_split_strips_cover_once():
    starts = row_strips(1000, 96, 48)
    for world in (1, 2, 3, 7, 30):
        blocks = [split_strips(starts, r, world) for r in range(world)]
        covered = [i for a, b in blocks for i in range(a, b)]
        assert covered == list(range(len(starts)))
    with pytest.raises(ValueError, match='rank'):
        split_strips(starts, 2, 2)


def test_bf16_autocast_maps_the_same_scene(tiny_model_files, mosaic,
                                           tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 96, 96, months=6)
    maps = []
    for amp in (False, True):
        out = str(tmp_path / f'map_{amp}.tif')
        SceneMapper(model, amp=amp).map_scene(_inputs(paths), out)
        with rasterio.open(out) as ds:
            maps.append(ds.read(1))
    # bf16 changes a few near-ties only
    assert np.mean(maps[0] == maps[1]) > 0.9


def _far_inputs(tmp_path, mosaic, dx_m, **kwargs):
    """EnMAP (and prior) of a scene whose origin is ``dx_m`` to the east."""
    from h2crop.mapping.synthetic_scene import DEFAULT_ORIGIN
    origin = (DEFAULT_ORIGIN[0] + dx_m, DEFAULT_ORIGIN[1])
    return write_scene(str(tmp_path / f'east{dx_m}'), mosaic, months=6,
                       origin=origin, **kwargs)


def test_disjoint_inputs_are_refused_before_any_pixel(tiny_model_files,
                                                      mosaic, tmp_path,
                                                      monkeypatch):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 96, 96, months=6)
    far = _far_inputs(tmp_path, mosaic, 55_000, enmap_crs='EPSG:32632')

    def no_inference(*args, **kwargs):
        raise AssertionError('a pixel was computed')

    monkeypatch.setattr(SceneMapper, 'map_rows', no_inference)
    out = str(tmp_path / 'map.tif')
    with pytest.raises(SceneError) as err:
        SceneMapper(model).map_scene(
            SceneInputs(paths[S2], far[ENMAP], far[PRIOR]), out)
    text = str(err.value)
    left, bottom, right, top = paths['grid'].bounds()
    assert text.startswith('no pixel can be mapped: EnMAP and prior do not '
                           'overlap S2: ')
    assert f'{far[ENMAP]} covers 0.0%' in text
    assert f'{far[PRIOR]} covers 0.0%' in text
    assert (f'of S2 {paths[S2][0]} (EPSG:32633, bounds ({left:.1f}, '
            f'{bottom:.1f}, {right:.1f}, {top:.1f}))') in text
    assert text.endswith('bounds in EPSG:32633')
    assert not any(p.name.startswith('map') for p in tmp_path.iterdir())


def test_partial_overlap_is_reported_and_stored(tiny_model_files, mosaic,
                                                tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 96, 192, months=6)
    # EnMAP of a scene 96 S2 columns (960 m) further east: half the map
    half = _far_inputs(tmp_path, mosaic, 960.0)
    inputs = SceneInputs(paths[S2], half[ENMAP], paths[PRIOR])
    out = str(tmp_path / 'map.tif')
    info = SceneMapper(model).map_scene(inputs, out)
    assert info['coverage']['EnMAP'] == pytest.approx(0.5)
    assert info['coverage']['prior'] == pytest.approx(1.0)
    assert info['coverage']['all'] == pytest.approx(0.5)
    with rasterio.open(out) as ds:
        stored = json.loads(ds.tags()['input_coverage'])
        classes = ds.read(1)
    assert stored == pytest.approx(dict(EnMAP=0.5, prior=1.0, all=0.5))
    # the map's own nodata: the western half, where EnMAP is missing
    assert (classes[:, :96] == NODATA).all()
    assert (classes[:, 96:] != NODATA).all()
    strict = SceneInputs(paths[S2], half[ENMAP], paths[PRIOR],
                         require_full_overlap=True)
    with pytest.raises(SceneError, match=r'the inputs cover 50\.0% of the '
                       r'map: EnMAP .* covers 50\.0%.*--require-full-'
                       r'overlap'):
        SceneMapper(model).map_scene(strict, str(tmp_path / 'strict.tif'))


def test_s2_of_another_pixel_size_is_refused_or_resampled(tiny_model_files,
                                                          mosaic, tmp_path):
    cfg, ckpt, _ = tiny_model_files
    model = init_model(cfg, ckpt)
    paths = write_scene(str(tmp_path / 's'), mosaic, 48, 48, months=6,
                        pixel=20.0)
    out = str(tmp_path / 'map.tif')
    with pytest.raises(SceneError, match=r's2_month01.tif: S2 pixel size 20 '
                       r'm x 20 m; the models are trained on 10 m S2 pixels '
                       r'\(and 30 m EnMAP\).*--resample-s2'):
        SceneMapper(model).map_scene(_inputs(paths), out)
    inputs = SceneInputs(paths[S2], paths[ENMAP], paths[PRIOR],
                         resample_s2=True)
    info = SceneMapper(model).map_scene(inputs, out)
    assert (info['width'], info['height']) == (96, 96)
    with rasterio.open(out) as ds:
        assert ds.res == (10.0, 10.0)
        assert (ds.bounds.left, ds.bounds.top) == paths['grid'].bounds()[
            ::3]
        assert ds.tags()['s2_resampled_from'] == '20 m x 20 m'
        assert (ds.read(1) != NODATA).all()
