"""Parcel reading and crop-code mapping (Shapefile, integer HCAT3 codes)."""
import csv
import re

import numpy as np
import pyogrio.raw
import pytest
import shapely
from rasterio.crs import CRS

from h2crop.datasets.converters.parcels import (
    NO_CODE_MAP_ENTRY,
    NO_TAXONOMY_CLASS,
    RPG,
    RPG_CODE_MAP,
    ParcelDataError,
    code_map_summary,
    load_code_map,
    map_codes,
    read_code_map,
    read_parcels,
    resolve_code_column,
    unmapped_rows,
)
from h2crop.datasets.synthetic import synthetic_taxonomy

TAX = synthetic_taxonomy(0)


def _write(path, codes, driver, crs='EPSG:32633'):
    geoms = np.array([shapely.box(500000 + 100 * i, 5300000,
                                  500090 + 100 * i, 5300090)
                      for i in range(len(codes))], dtype=object)
    pyogrio.raw.write(path, shapely.to_wkb(geoms), [np.asarray(codes)],
                      ['hcat'], driver=driver, geometry_type='Polygon',
                      crs=crs)
    return geoms


def test_integer_hcat3_codes_from_a_shapefile(tmp_path):
    codes = np.array([int(TAX.codes[5]), int(TAX.codes[7]), 123],
                     dtype=np.int64)
    path = str(tmp_path / 'p.shp')
    geoms = _write(path, codes, 'ESRI Shapefile')
    parcels = map_codes(read_parcels(path, 'hcat'), TAX)
    assert list(parcels.codes) == [TAX.codes[5], TAX.codes[7], '123']
    assert tuple(parcels.paths[1]) == TAX.path_of_code(TAX.codes[5])
    assert tuple(parcels.paths[3]) == (0, 0, 0, 0)
    rows = unmapped_rows(parcels, 'current')
    assert rows == [dict(year='current', code='123', hcat3_code='123',
                         reason=NO_TAXONOMY_CLASS, parcels=1,
                         area=pytest.approx(geoms[2].area))]
    with pytest.raises(ParcelDataError, match=r"no column 'crop'.*hcat"):
        read_parcels(path, 'crop')


def test_reprojection_and_code_map(tmp_path):
    path = str(tmp_path / 'p.gpkg')
    _write(path, np.array(['A', 'B'], dtype=object), 'GPKG')
    cmap = tmp_path / 'map.csv'
    cmap.write_text(f'local_code,HCAT3_code\nA,{TAX.codes[3]}\n')
    parcels = map_codes(read_parcels(path, 'hcat', CRS.from_epsg(4326)),
                        TAX, read_code_map(str(cmap)))
    assert parcels.geometries[0].bounds[0] < 20  # now in degrees
    assert parcels.reasons[1] == NO_CODE_MAP_ENTRY
    assert tuple(parcels.paths[1]) == TAX.path_of_code(TAX.codes[3])
    cmap.write_text('code,HCAT3_code\nA,1\n')
    with pytest.raises(ParcelDataError, match='local_code'):
        read_code_map(str(cmap))
    cmap.write_text('local_code,HCAT3_code\nA,1\nA,2\n')
    with pytest.raises(ParcelDataError, match=':3: local code'):
        read_code_map(str(cmap))


# ------------------------------------------------ presets and EuroCrops files
def _write_columns(path, columns, driver='GPKG', crs='EPSG:2154'):
    """Boxes with attribute ``columns`` (name -> values) in Lambert-93."""
    n = len(next(iter(columns.values())))
    geoms = np.array([shapely.box(650000 + 200 * i, 6860000,
                                  650150 + 200 * i, 6860150)
                      for i in range(n)], dtype=object)
    pyogrio.raw.write(path, shapely.to_wkb(geoms),
                      [np.asarray(v) for v in columns.values()],
                      list(columns), driver=driver, geometry_type='Polygon',
                      crs=crs)
    return path


def _taxonomy_code(taxonomy_csv, level4_name):
    """HCAT3 code of a class, read from the taxonomy file itself."""
    with open(taxonomy_csv, newline='', encoding='utf-8') as f:
        for row in csv.DictReader(f):
            if row['level4_name'].strip() == level4_name:
                return row['HCAT3_code']
    raise KeyError(level4_name)


def _read_rpg_csv():
    with open(RPG_CODE_MAP, encoding='utf-8') as f:
        lines = f.read().splitlines()
    comments = [line for line in lines if line.startswith('#')]
    rows = list(csv.DictReader(line for line in lines
                               if not line.startswith('#')))
    return comments, rows


RPG_EXPECTED = {  # RPG code -> the H2Crop class its label names
    'BTH': 'winter_common_soft_wheat', 'ORP': 'spring_barley',
    'MIS': 'grain_maize_corn_popcorn', 'MIE': 'green_silo_maize',
    'CZH': 'winter_rapeseed_rape', 'TRN': 'sunflower',
    'PPH': 'pasture_meadow_grassland_grass', 'PTR': 'temporary_grass',
    'LUZ': 'alfalfa_lucerne', 'VRC': 'vineyards_wine_vine_rebland_grapes',
    'J5M': 'fallow_land_not_crop', 'SOJ': 'soy_soybeans',
    'BTN': 'beetroot_beets', 'PTC': 'potatoes',
}


def test_rpg_preset_maps_code_cultu_to_the_taxonomy(tmp_path, taxonomy_csv):
    from h2crop.taxonomy import load_taxonomy
    tax = load_taxonomy(taxonomy_csv)
    codes = list(RPG_EXPECTED) + ['ZZZ', 'BOR']  # left out: no clear class
    path = _write_columns(str(tmp_path / 'rpg.gpkg'), {
        'ID_PARCEL': np.arange(len(codes)).astype(str),
        'SURF_PARC': np.full(len(codes), 2.25),
        'CODE_CULTU': np.asarray(codes, dtype=object),
        'CODE_GROUP': np.full(len(codes), '1', dtype=object)})
    code_map = load_code_map('rpg')
    assert code_map.name == RPG and code_map.code_column == 'CODE_CULTU'
    column = resolve_code_column(path, None, code_map)
    assert column == 'CODE_CULTU'
    assert resolve_code_column(path, 'code_cultu', code_map) == 'CODE_CULTU'
    parcels = map_codes(read_parcels(path, column), tax, code_map.mapping)
    for i, code in enumerate(RPG_EXPECTED):
        want = _taxonomy_code(taxonomy_csv, RPG_EXPECTED[code])
        assert parcels.hcat3[i] == want, code
        assert tuple(parcels.paths[i + 1]) == tax.path_of_code(want)
    assert list(parcels.reasons[-2:]) == [NO_CODE_MAP_ENTRY] * 2
    rows = unmapped_rows(parcels, 'current')
    assert {r['code'] for r in rows} == {'ZZZ', 'BOR'}


def test_shipped_rpg_map_is_well_formed_and_reaches_the_taxonomy(
        taxonomy_csv):
    from h2crop.taxonomy import load_taxonomy
    comments, rows = _read_rpg_csv()
    text = '\n'.join(comments)
    assert 'Sources' in text and 'HCAT3' in text and 'EuroCrops' in text
    assert rows and set(rows[0]) >= {'local_code', 'HCAT3_code',
                                     'rpg_label'}
    locals_ = [r['local_code'] for r in rows]
    assert len(locals_) == len(set(locals_))
    assert all(re.fullmatch(r'[A-Z0-9]{3}', c) for c in locals_)
    bad = [r for r in rows if not re.fullmatch(r'33\d{8}', r['HCAT3_code'])]
    assert bad == []
    # what reaches the 101 classes, counted here from the two files
    with open(taxonomy_csv, newline='', encoding='utf-8') as f:
        classes = {row['HCAT3_code'] for row in csv.DictReader(f)}
    reached = [r for r in rows if r['HCAT3_code'] in classes]
    summary = code_map_summary(read_code_map(RPG_CODE_MAP),
                               load_taxonomy(taxonomy_csv))
    assert summary == dict(entries=len(rows), to_taxonomy=len(reached),
                           classes_reached=len({r['HCAT3_code']
                                                for r in reached}),
                           classes=len(classes))
    assert summary['classes'] == 101 and summary['classes_reached'] >= 95
    print(f'RPG map: {summary["to_taxonomy"]} of {summary["entries"]} codes '
          f'reach {summary["classes_reached"]} of the 101 classes')


def test_eurocrops_country_file_needs_no_code_column(tmp_path, taxonomy_csv):
    from h2crop.taxonomy import load_taxonomy
    tax = load_taxonomy(taxonomy_csv)
    wheat = _taxonomy_code(taxonomy_csv, 'winter_common_soft_wheat')
    maize = _taxonomy_code(taxonomy_csv, 'grain_maize_corn_popcorn')
    path = _write_columns(str(tmp_path / 'FR_2018_EC21.shp'), {
        'ID_PARCEL': np.array(['1', '2', '3'], dtype=object),
        'CODE_CULTU': np.array(['BTH', 'MIS', 'XXX'], dtype=object),
        'EC_trans_n': np.array(['Soft winter wheat', 'Maize', 'Other'],
                               dtype=object),
        'EC_hcat_n': np.array(['winter_common_soft_wheat',
                               'grain_maize_corn_popcorn',
                               'not_known_and_other'], dtype=object),
        'EC_hcat_c': np.array([int(wheat), int(maize), 3399000000],
                              dtype=np.int64)}, driver='ESRI Shapefile')
    none = load_code_map(None)
    assert none.mapping is None
    column = resolve_code_column(path, None, none)
    assert column == 'EC_hcat_c'
    parcels = map_codes(read_parcels(path, column), tax, none.mapping)
    assert list(parcels.hcat3) == [wheat, maize, '3399000000']
    assert tuple(parcels.paths[2]) == tax.path_of_code(maize)
    assert parcels.reasons[2] == NO_TAXONOMY_CLASS
    # the eurocrops preset is the same identity; rpg reads CODE_CULTU
    assert resolve_code_column(path, None, load_code_map('eurocrops')) == \
        'EC_hcat_c'
    rpg = load_code_map('rpg')
    assert resolve_code_column(path, None, rpg) == 'CODE_CULTU'
    via_rpg = map_codes(read_parcels(path, 'CODE_CULTU'), tax, rpg.mapping)
    assert list(via_rpg.hcat3[:2]) == [wheat, maize]
    with pytest.raises(ParcelDataError, match='holds HCAT3 codes already'):
        resolve_code_column(path, 'EC_hcat_c', rpg)
    other = _write_columns(str(tmp_path / 'plain.gpkg'),
                           {'crop': np.array(['A'], dtype=object)})
    with pytest.raises(ParcelDataError, match="not a EuroCrops file.*crop"):
        resolve_code_column(other, None, none)
    with pytest.raises(ParcelDataError,
                       match="--code-map rpg reads the codes from "
                       "'CODE_CULTU'.*--code-column"):
        resolve_code_column(other, None, rpg)


def test_code_map_csv_comments_and_line_numbers(tmp_path):
    cmap = tmp_path / 'map.csv'
    cmap.write_text('# source: mine\n# second comment\nlocal_code,'
                    'HCAT3_code,label\nA,3301010101,wheat\nA,3301010102,x\n')
    with pytest.raises(ParcelDataError, match=r'map\.csv:5: local code '
                       r"'A'.*at line 4"):
        read_code_map(str(cmap))
    cmap.write_text('# only a comment\nlocal_code,HCAT3_code\nB,1\n')
    assert read_code_map(str(cmap)) == {'B': '1'}
    assert load_code_map(str(cmap)).mapping == {'B': '1'}
