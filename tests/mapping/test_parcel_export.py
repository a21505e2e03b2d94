"""Parcel export from a prediction GeoTIFF: every parcel, votes, names."""
import numpy as np
import pyogrio.raw
import pytest
import shapely
from affine import Affine

from h2crop.constants import LEVELS
from h2crop.datasets.synthetic import synthetic_taxonomy
from h2crop.mapping.geotiff import PRED_NODATA, write_tile_geotiff
from h2crop.mapping.parcels import export_parcel_predictions

TAX = synthetic_taxonomy(0, counts=(3, 4, 5, 6))
CRS_WKT = 'EPSG:32633'
ORIGIN = (500000.0, 5300000.0)


def test_export_holds_every_parcel_with_votes(tmp_path):
    # a 10 x 10 map of 10 m pixels; parcel A covers columns 0..4 (50
    # pixels), B columns 5..9 of rows 0..4 (25), C is outside the map
    from rasterio.crs import CRS
    transform = Affine(10, 0, ORIGIN[0], 0, -10, ORIGIN[1])
    attrs = dict(crs_wkt=CRS.from_user_input(CRS_WKT).to_wkt(),
                 transform=np.array(tuple(transform)[:6]))
    pred = np.zeros((4, 10, 10), np.uint8)
    conf = np.full((4, 10, 10), 0.9)
    pred[:, :, :5] = 1
    pred[:, :2, :5] = 2  # A: 40 votes for 1, 10 for 2
    conf[:, :, :5] = 0.7
    pred[:, :5, 5:] = 3  # B: all 3
    pred[:, 4, 5:] = PRED_NODATA  # but one row without prediction
    map_path = write_tile_geotiff(pred, conf, attrs, str(tmp_path / 'm.tif'))
    x0, y0 = ORIGIN
    polys = [shapely.box(x0, y0 - 100, x0 + 50, y0),
             shapely.box(x0 + 50, y0 - 50, x0 + 100, y0),
             shapely.box(x0 + 500, y0 - 50, x0 + 600, y0)]
    src = str(tmp_path / 'parcels.gpkg')
    pyogrio.raw.write(src, shapely.to_wkb(np.array(polys, dtype=object)),
                      [np.array(['a', 'b', 'c'], dtype=object)], ['name'],
                      driver='GPKG', geometry_type='Polygon', crs=CRS_WKT)
    out = str(tmp_path / 'out.gpkg')
    summary = export_parcel_predictions(map_path, src, out, TAX)
    assert summary == dict(parcels=3, with_prediction=2)
    meta, _, _, fields = pyogrio.raw.read(out)
    col = dict(zip(meta['fields'], fields))
    assert list(col['name']) == ['a', 'b', 'c']
    for lv in LEVELS:
        assert list(col[f'{lv}_id'][:2]) == [1, 3]
        assert col[f'{lv}_name'][0] == TAX.level_names(lv)[1]
        assert col[f'{lv}_share'][0] == pytest.approx(0.8)
        assert col[f'{lv}_share'][1] == pytest.approx(1.0)
        assert col[f'{lv}_conf'][0] == pytest.approx(70.0)
        assert col[f'{lv}_conf'][1] == pytest.approx(90.0)
        assert col[f'{lv}_name'][2] is None  # outside: null
    assert list(col['n_pixels']) == [50, 20, 0]
    with pytest.raises(FileExistsError):
        export_parcel_predictions(map_path, src, out, TAX)
