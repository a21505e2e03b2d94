"""tools/dataset_converters/rasters2h2crop.py: the command line."""
import importlib.util
import json
import os.path as osp

import rasterio

from h2crop.datasets.converters.convert import REPORT_FILE
from h2crop.datasets.converters.synthetic_region import make_synthetic_region

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rasters2h2crop_cli(tmp_path, capsys):
    tool = _load('tools/dataset_converters/rasters2h2crop.py')
    raw = make_synthetic_region(str(tmp_path / 'raw'), width=72, height=48,
                                parcel_size=120.0, seed=4)
    out = str(tmp_path / 'out')
    argv = [out, '--s2', *raw['s2'], '--enmap', raw['enmap'],
            '--parcels', raw['parcels'], '--code-column', 'crop_code',
            '--code-map', raw['code_map'], '--taxonomy', raw['taxonomy'],
            '--tile-size', '24', '--split-block', '1', '--workers', '2']
    assert tool.main(argv) == 0
    assert '6 of 6 tiles written' in capsys.readouterr().out
    with open(osp.join(out, REPORT_FILE)) as f:
        report = json.load(f)
    assert report['workers'] == 2 and report['parcels_prior'] == 0
    assert sorted(report['splits'].values()) == [1, 1, 4]
    # refused without --overwrite, and a wrong column is named
    assert tool.main(argv) == 2
    assert '--overwrite' in capsys.readouterr().err
    bad = argv[:argv.index('--code-column') + 1] + ['nope'] + \
        argv[argv.index('--code-column') + 2:] + ['--overwrite']
    assert tool.main(bad) == 2
    err = capsys.readouterr().err
    assert "no column 'nope'" in err and 'crop_code' in err


def test_rasters2h2crop_eurocrops_file_and_rpg_preset(tmp_path, capsys,
                                                      taxonomy_csv):
    import csv

    import numpy as np
    import pyogrio.raw
    import shapely

    from h2crop.datasets.converters.convert import PARCELS_FILE
    from h2crop.taxonomy import load_taxonomy
    tool = _load('tools/dataset_converters/rasters2h2crop.py')
    raw = make_synthetic_region(str(tmp_path / 'raw'), width=48, height=48,
                                parcel_size=120.0, seed=5)
    tax = load_taxonomy(taxonomy_csv)
    with open(taxonomy_csv, newline='', encoding='utf-8') as f:
        code_of = {r['level4_name'].strip(): r['HCAT3_code']
                   for r in csv.DictReader(f)}
    wheat, maize = (code_of['winter_common_soft_wheat'],
                    code_of['grain_maize_corn_popcorn'])
    geoms = np.array(raw['geometries'], dtype=object)
    n = len(geoms)
    rpg = np.where(np.arange(n) % 2, 'MIS', 'BTH').astype(object)
    ec = np.where(np.arange(n) % 2, int(maize), int(wheat)).astype(np.int64)
    parcels = str(tmp_path / 'FR_2023_EC.gpkg')
    with rasterio.open(raw['s2'][0]) as ds:
        crs = ds.crs.to_string()
    pyogrio.raw.write(parcels, shapely.to_wkb(geoms), [rpg, ec],
                      ['CODE_CULTU', 'EC_hcat_c'], driver='GPKG',
                      geometry_type='Polygon', crs=crs)
    out = str(tmp_path / 'out')
    base = [out, '--s2', *raw['s2'], '--enmap', raw['enmap'], '--parcels',
            parcels, '--taxonomy', taxonomy_csv, '--tile-size', '24',
            '--split-block', '1']
    assert tool.main(base) == 0                  # no --code-column needed
    with open(osp.join(out, REPORT_FILE)) as f:
        report = json.load(f)
    assert report['code_column'] == 'EC_hcat_c' and not report['code_map']
    with open(osp.join(out, PARCELS_FILE), newline='') as f:
        rows = list(csv.DictReader(f))
    assert [r['hcat3_code'] for r in rows] == [str(v) for v in ec]
    assert [int(rows[1][lv]) for lv in ('level1', 'level2', 'level3',
                                       'level4')] == \
        list(tax.path_of_code(maize))
    assert tool.main(base + ['--code-map', 'rpg', '--overwrite']) == 0
    with open(osp.join(out, REPORT_FILE)) as f:
        report = json.load(f)
    assert report['code_column'] == 'CODE_CULTU'
    assert report['code_map'] == 'rpg'
    assert report['code_map_summary']['classes'] == 101
    with open(osp.join(out, PARCELS_FILE), newline='') as f:
        assert [r['hcat3_code'] for r in csv.DictReader(f)] == \
            [str(v) for v in ec]
    capsys.readouterr()
    assert tool.main(base + ['--code-map', 'rpg', '--code-column',
                             'EC_hcat_c', '--overwrite']) == 2
    assert 'holds HCAT3 codes already' in capsys.readouterr().err


def test_rasters2h2crop_like_checkpoint(tiny_model_files, tmp_path, capsys):
    from h2crop.taxonomy import load_taxonomy
    tool = _load('tools/dataset_converters/rasters2h2crop.py')
    _, ckpt, data_root = tiny_model_files  # a 96 px model
    raw = make_synthetic_region(str(tmp_path / 'raw'), width=192,
                                height=96, parcel_size=120.0, seed=4)
    out = str(tmp_path / 'out')
    argv = [out, '--s2', *raw['s2'], '--enmap', raw['enmap'],
            '--parcels', raw['parcels'], '--code-column', 'crop_code',
            '--code-map', raw['code_map'], '--split-block', '1',
            '--min-valid', '0', '--like-checkpoint', ckpt]
    assert tool.main(argv + ['--tile-size', '48']) == 2
    assert "differs from the checkpoint's tile size 96" in \
        capsys.readouterr().err
    assert tool.main(argv) == 0
    with open(osp.join(out, REPORT_FILE)) as f:
        report = json.load(f)
    trained = load_taxonomy(osp.join(data_root, 'cascade_labels.csv'))
    assert report['tile_size'] == 96 and report['tiles_written'] == 2
    assert report['taxonomy_digest'] == trained.digest()
    assert load_taxonomy(osp.join(out, 'cascade_labels.csv')).digest() == \
        trained.digest()
