"""Parcel reading and crop-code mapping (Shapefile, integer HCAT3 codes)."""
import numpy as np
import pyogrio.raw
import pytest
import shapely
from rasterio.crs import CRS

from h2crop.datasets.converters.parcels import (
    NO_CODE_MAP_ENTRY,
    NO_TAXONOMY_CLASS,
    ParcelDataError,
    map_codes,
    read_code_map,
    read_parcels,
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
