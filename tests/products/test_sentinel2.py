"""Monthly Sentinel-2 composites against an independent numpy computation.

The fixtures (``_s2_fixtures``) write SAFE folders and zips, band-file
folders and STAC items in their real layouts; every test checks values:
the offset removed, the SCL classes masked, the median over clear days,
the count, the grid and the nodata months.
"""
import datetime as dt
import json
import logging
import os.path as osp
import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine
from mmengine.logging import MMLogger
from rasterio.crs import CRS

from h2crop.constants import S2_BAND_NAMES
from h2crop.geo import RasterGrid
from h2crop.products import (
    COMPOSITE_NODATA,
    DEFAULT_MASK_CLASSES,
    ProductError,
    build_monthly_composites,
    composite_path,
    find_products,
    reduce_observations,
)
from h2crop.products import synthetic_s2 as fx
from h2crop.products.s2_metadata import NATIVE_RESOLUTION, PRODUCT_BANDS

UTC = dt.timezone.utc
#: odc-geo multiplies affines with `*`, which affine 2.4 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore::PendingDeprecationWarning:odc.*")


def _when(month: int, day: int, year: int = 2023) -> dt.datetime:
    return dt.datetime(year, month, day, 10, 36, 29, tzinfo=UTC)


def _up(arr: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upsampling of an aligned grid."""
    return np.repeat(np.repeat(arr, factor, 0), factor, 1)


def expected(acqs, mask=DEFAULT_MASK_CLASSES, reducer=np.ma.median):
    """Composite and count of ``acqs`` (one per day), nearest resampling.

    Computed from the truth, not from the files: reflectance x 10000 where
    the SCL class is clear and no band is nodata, the masked median over
    the products, rounded half to even.
    """
    values, valid = [], []
    for acq in acqs:
        scl = _up(acq.scl_map(), 2)
        ok = ~np.isin(scl, mask) & (scl != 0) & ~acq.nodata
        bands = []
        for band in PRODUCT_BANDS:
            f = NATIVE_RESOLUTION[band] // 10
            bands.append(_up(acq.refl[band], f).astype(np.float64))
        values.append(np.stack(bands))
        valid.append(ok)
    values = np.stack(values)  # (T, 10, H, W)
    valid = np.stack(valid)  # (T, H, W)
    masked = np.ma.masked_array(values, np.broadcast_to(
        ~valid[:, None], values.shape))
    med = reducer(masked, axis=0)
    count = valid.sum(0)
    comp = np.where(count > 0, np.rint(med.filled(0)), COMPOSITE_NODATA)
    return comp.astype(np.int16), count


class _Info:
    """What a test checks of a written raster."""

    def __init__(self, ds):
        self.nodata, self.dtypes, self.crs = ds.nodata, ds.dtypes, ds.crs
        self.descriptions, self.transform = ds.descriptions, ds.transform
        self.width, self.height = ds.width, ds.height
        self.overviews = ds.overviews(1)
        self.layout = ds.tags(ns='IMAGE_STRUCTURE').get('LAYOUT')


def read(path):
    with rasterio.open(path) as ds:
        return ds.read(), _Info(ds)


@pytest.fixture(scope='module')
def june_safes(tmp_path_factory):
    """Three June products (N0509, N0509, N0400) and one July product."""
    root = str(tmp_path_factory.mktemp('safes'))
    rng = np.random.default_rng(0)
    acqs = {6: [fx.make_acquisition(rng, _when(6, d), nodata_cols=c)
                for d, c in ((5, 6), (15, 0), (25, 0))],
            7: [fx.make_acquisition(rng, _when(7, 10))]}
    fx.write_safe(root, acqs[6][0])
    fx.write_safe(root, acqs[6][1], mission='S2A')
    fx.write_safe(root, acqs[6][2], baseline='0400')
    fx.write_safe(root, acqs[7][0])
    return root, acqs


def test_safe_composites_match_numpy(june_safes, tmp_path):
    root, acqs = june_safes
    out = str(tmp_path / 'out')
    report = build_monthly_composites([root], out, 2023, months=[6, 7, 8],
                                      resampling='nearest', chunk_size=32)
    for month in (6, 7):
        want, want_count = expected(acqs[month])
        got, ds = read(composite_path(out, 2023, month))
        np.testing.assert_array_equal(got, want)
        count, _ = read(composite_path(out, 2023, month, 'count'))
        np.testing.assert_array_equal(count[0], want_count)
        assert ds.nodata == COMPOSITE_NODATA and ds.dtypes[0] == 'int16'
        assert ds.descriptions == S2_BAND_NAMES
        assert ds.layout == 'COG' and ds.overviews == [2]
        # the first product's 10 m grid
        assert ds.crs == fx.CRS_32632
        assert ds.transform == Affine(10, 0, *fx.ORIGIN[:1], 0, -10,
                                      fx.ORIGIN[1])
        assert (ds.width, ds.height) == (fx.SIZE, fx.SIZE)
        row = report['months'][month - 6]
        assert row['clear_share'] == pytest.approx((want_count > 0).mean())
        assert row['n_products'] == len(acqs[month])
    # the offset really was removed: clear values are reflectances, and
    # some clear pixels hold no value below 1000 only if it was not
    assert (got[got != COMPOSITE_NODATA] < 1000).any()
    august, _ = read(composite_path(out, 2023, 8))
    assert (august == COMPOSITE_NODATA).all()
    count, _ = read(composite_path(out, 2023, 8, 'count'))
    assert (count == 0).all()
    june = report['months'][0]
    assert june['products'][0].startswith('S2B_MSIL2A_20230605T103629_N0509')
    assert june['dates'] == ['2023-06-05', '2023-06-15', '2023-06-25']
    assert report['months'][2]['products'] == []
    assert report['months'][2]['clear_share'] == 0.0
    with open(osp.join(out, 's2_report.json')) as f:
        saved = json.load(f)
    assert saved['band_order'] == list(S2_BAND_NAMES)
    assert saved['nodata'] == COMPOSITE_NODATA
    offsets = {p['baseline']: p['offset'] for p in saved['products']}
    assert offsets == {'05.09': [-1000.0], '04.00': [-1000.0]}
    with open(osp.join(out, 's2_report.csv')) as f:
        lines = f.read().splitlines()
    assert lines[0].startswith('month,file,count_file,n_products')
    assert len(lines) == 4


def test_bilinear_default_is_exact_on_10m_bands_and_linear_fields(tmp_path):
    rng = np.random.default_rng(1)
    acq = fx.make_acquisition(rng, _when(5, 3), cloud=0.0)
    acq.scl[:] = 4
    # a linear ramp in x at 20 m: bilinear upsampling reproduces the line
    ramp = 1000 + 20 * np.arange(30)[None, :].repeat(30, 0)
    acq.refl['B11'] = ramp
    fx.write_safe(str(tmp_path / 'in'), acq)
    build_monthly_composites([str(tmp_path / 'in')], str(tmp_path / 'out'),
                             2023, months=[5])
    got, _ = read(composite_path(str(tmp_path / 'out'), 2023, 5))
    for b, band in enumerate(PRODUCT_BANDS):
        if NATIVE_RESOLUTION[band] == 10:
            np.testing.assert_array_equal(got[b], acq.refl[band])
    # 10 m pixel centres at 5, 15, ... m; 20 m centres at 10, 30, ...
    x10 = (np.arange(60) + 0.5) * 10
    line = 1000 + 20 * (x10 - 10) / 20
    b11 = PRODUCT_BANDS.index('B11')
    np.testing.assert_allclose(got[b11][:, 1:-1], np.rint(line[1:-1])[None]
                               .repeat(60, 0), atol=0.51)


def test_old_baseline_has_no_offset(tmp_path):
    rng = np.random.default_rng(2)
    acq = fx.make_acquisition(rng, _when(3, 8, 2021))
    fx.write_safe(str(tmp_path), acq, baseline='0300')
    out = str(tmp_path / 'out')
    report = build_monthly_composites([str(tmp_path)], out, 2021,
                                      months=[3], resampling='nearest')
    got, _ = read(composite_path(out, 2021, 3))
    np.testing.assert_array_equal(got, expected([acq])[0])
    assert report['products'][0]['offset'] == [0.0]
    assert 'baseline 03.00' in report['products'][0]['offset_source']


def test_zipped_safe_equals_folder(tmp_path):
    rng = np.random.default_rng(3)
    acq = fx.make_acquisition(rng, _when(4, 2))
    fx.write_safe(str(tmp_path / 'zip'), acq, as_zip=True)
    out = str(tmp_path / 'out')
    build_monthly_composites([str(tmp_path / 'zip')], out, 2023, months=[4],
                             resampling='nearest')
    got, _ = read(composite_path(out, 2023, 4))
    np.testing.assert_array_equal(got, expected([acq])[0])


def test_level1c_product_is_refused(tmp_path):
    rng = np.random.default_rng(4)
    path = fx.write_safe(str(tmp_path), fx.make_acquisition(
        rng, _when(6, 1)), level='L1C')
    with pytest.raises(ProductError, match='Level-1 product') as err:
        build_monthly_composites([path], str(tmp_path / 'out'), 2023)
    assert 'MSIL1C' in str(err.value)
    assert not osp.exists(tmp_path / 'out')


def test_missing_band_names_product_and_band(tmp_path):
    rng = np.random.default_rng(5)
    path = fx.write_safe(str(tmp_path), fx.make_acquisition(
        rng, _when(6, 1)), drop=('B8A', ))
    with pytest.raises(ProductError, match=r"\['B8A'\]") as err:
        find_products([path])
    assert osp.basename(path) in str(err.value)


def test_unknown_offset_is_refused_unless_assumed(tmp_path):
    """Planetary-Computer-style item: baseline 05.09, no offset fields."""
    rng = np.random.default_rng(6)
    acq = fx.make_acquisition(rng, _when(6, 9))
    files = fx.write_band_files(str(tmp_path / 'pc'), acq, offset=1000)
    item = fx.stac_item(acq, files, 'planetary-computer')
    stac = fx.write_item_collection(str(tmp_path / 'pc.json'), [item])
    with pytest.raises(ProductError, match='--assume-offset -1000') as err:
        find_products([stac])
    assert item['id'] in str(err.value)
    out = str(tmp_path / 'out')
    report = build_monthly_composites([stac], out, 2023, months=[6],
                                      assume_offset=-1000,
                                      resampling='nearest')
    got, _ = read(composite_path(out, 2023, 6))
    np.testing.assert_array_equal(got, expected([acq])[0])
    assert report['products'][0]['offset_source'].startswith('assumed')


def test_stac_catalogues_of_other_providers(tmp_path):
    """Earth Search (offset applied and not) and CDSE keys in one month."""
    rng = np.random.default_rng(7)
    acqs = [fx.make_acquisition(rng, _when(9, d)) for d in (2, 12, 22)]
    # Earth Search, offset already applied by the provider: DN = refl,
    # although raster:bands still says offset -0.1
    f0 = fx.write_band_files(str(tmp_path / 'es0'), acqs[0], 0,
                             naming='earth-search')
    es0 = fx.stac_item(acqs[0], f0, 'earth-search', offset_applied=True)
    f1 = fx.write_band_files(str(tmp_path / 'es1'), acqs[1], 1000,
                             naming='earth-search')
    es1 = fx.stac_item(acqs[1], f1, 'earth-search', offset_applied=False,
                       proj=False)
    coll = fx.write_item_collection(str(tmp_path / 'search.json'),
                                    [es0, es1])
    # CDSE: B02_10m / B02_20m keys, processing:version, in a Catalog with
    # relative hrefs
    cat_dir = tmp_path / 'cat'
    f2 = fx.write_band_files(str(cat_dir / 'data'), acqs[2], 1000)
    rel = {b: osp.join('..', 'data', osp.basename(p)) for b, p in f2.items()}
    cat = fx.write_catalog(str(cat_dir), [fx.stac_item(acqs[2], rel,
                                                       'cdse')])
    out = str(tmp_path / 'out')
    report = build_monthly_composites([coll, cat], out, 2023, months=[9],
                                      resampling='nearest')
    got, _ = read(composite_path(out, 2023, 9))
    np.testing.assert_array_equal(got, expected(acqs)[0])
    sources = {p['id']: p['offset_source'] for p in report['products']}
    assert 'earthsearch:boa_offset_applied' in sources[es0['id']]
    assert sources[es1['id']].startswith('STAC raster:bands')


def test_band_folder_with_offset_tags(tmp_path):
    rng = np.random.default_rng(8)
    acq = fx.make_acquisition(rng, _when(10, 4))
    folder = tmp_path / 'S2B_32TQM_20231004_0_L2A'
    fx.write_band_files(str(folder), acq, 1000, tags=True)
    out = str(tmp_path / 'out')
    report = build_monthly_composites([str(tmp_path)], out, 2023,
                                      months=[10], resampling='nearest')
    got, _ = read(composite_path(out, 2023, 10))
    np.testing.assert_array_equal(got, expected([acq])[0])
    assert report['products'][0]['offset_source'].startswith('GeoTIFF')
    # the same folder without tags and without a baseline: refused
    bare = tmp_path / 'bare' / 'S2B_32TQM_20231004_0_L2A'
    fx.write_band_files(str(bare), acq, 1000)
    with pytest.raises(ProductError, match='no processing baseline'):
        find_products([str(bare)])


def test_same_day_tiles_are_one_observation(tmp_path):
    rng = np.random.default_rng(9)
    a = fx.make_acquisition(rng, _when(6, 5))
    b = fx.make_acquisition(rng, _when(6, 5))
    b.when = b.when + dt.timedelta(seconds=4)
    b.scl[:] = 4
    a.scl[:] = 4
    fx.write_safe(str(tmp_path), a, tile='32TQM')
    fx.write_safe(str(tmp_path), b, tile='32TQN')
    out = str(tmp_path / 'out')
    report = build_monthly_composites([str(tmp_path)], out, 2023,
                                      months=[6], resampling='nearest')
    count, _ = read(composite_path(out, 2023, 6, 'count'))
    assert (count == 1).all()
    got, _ = read(composite_path(out, 2023, 6))
    np.testing.assert_array_equal(got, expected([a])[0])  # the first wins
    assert report['months'][0]['n_observations'] == 1


def test_mask_classes_option(june_safes, tmp_path):
    root, acqs = june_safes
    out = str(tmp_path / 'out')
    build_monthly_composites([root], out, 2023, months=[6],
                             mask_classes=[9], resampling='nearest')
    got, _ = read(composite_path(out, 2023, 6))
    np.testing.assert_array_equal(got, expected(acqs[6], mask=(9, ))[0])
    with pytest.raises(ValueError, match='not SCL classes'):
        build_monthly_composites([root], out, 2023, mask_classes=[12],
                                 overwrite=True)


def test_grid_options_and_resolution_check(june_safes, tmp_path):
    root, acqs = june_safes
    left, top = fx.ORIGIN
    # a 20 x 30 px window of the tile, bounds given unsnapped
    bounds = (left + 103, top - 297, left + 398, top - 104)
    out = str(tmp_path / 'out')
    build_monthly_composites([root], out, 2023, months=[6],
                             crs='EPSG:32632', bounds=bounds,
                             resampling='nearest')
    got, ds = read(composite_path(out, 2023, 6))
    assert ds.transform == Affine(10, 0, left + 100, 0, -10, top - 100)
    assert got.shape == (10, 20, 30)
    np.testing.assert_array_equal(got, expected(acqs[6])[0][:, 10:30, 10:40])
    like = composite_path(out, 2023, 6)
    out2 = str(tmp_path / 'out2')
    build_monthly_composites([root], out2, 2023, months=[6], like=like,
                             resampling='nearest')
    np.testing.assert_array_equal(read(composite_path(out2, 2023, 6))[0],
                                  got)
    with pytest.raises(ProductError, match='--allow-other-resolution'):
        build_monthly_composites([root], str(tmp_path / 'o3'), 2023,
                                 crs='EPSG:32632', bounds=bounds,
                                 resolution=20)


def test_mixed_crs_is_reprojected_with_a_warning(tmp_path, caplog):
    rng = np.random.default_rng(10)
    a = fx.make_acquisition(rng, _when(6, 5))
    # the same ground in UTM 33N (a neighbouring zone's tile)
    b = fx.make_acquisition(rng, _when(6, 15), origin=(236000.0, 5100000.0),
                            crs=CRS.from_epsg(32633))
    fx.write_safe(str(tmp_path), a)
    fx.write_safe(str(tmp_path), b, tile='33TUG')
    out = str(tmp_path / 'out')
    logger = MMLogger.get_current_instance()
    logger.propagate = True
    with caplog.at_level(logging.WARNING):
        report = build_monthly_composites([str(tmp_path)], out, 2023,
                                          months=[6])
    logger.propagate = False
    assert any('another CRS' in n for n in report['notes'])
    assert 'EPSG:32633' in report['products'][1]['crs']
    _, ds = read(composite_path(out, 2023, 6))
    assert ds.crs == fx.CRS_32632  # the first product's grid


def test_corrupt_file_is_named(tmp_path):
    rng = np.random.default_rng(11)
    path = fx.write_safe(str(tmp_path), fx.make_acquisition(rng,
                                                            _when(6, 5)))
    jp2 = [p for p in find_products([path])[0].item.assets.values()][4].href
    with open(jp2, 'wb') as f:
        f.write(b'\x00\x00\x00\x0cjP  \r\n\x87\n truncated')
    with pytest.raises(ProductError, match=osp.basename(jp2)):
        build_monthly_composites([path], str(tmp_path / 'out'), 2023,
                                 months=[6])


def test_truncated_file_data_is_named(tmp_path):
    """The header reads, the pixels do not: found while compositing."""
    rng = np.random.default_rng(13)
    acq = fx.make_acquisition(rng, _when(6, 5))
    folder = tmp_path / 'S2B_MSIL2A_20230605T103629_N0509_R008_T32TQM_x'
    files = fx.write_band_files(str(folder), acq, 1000, tags=True)
    with open(files['B05'], 'rb') as f:
        data = f.read()
    with open(files['B05'], 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    # a good product in May: its month is written, then removed again
    good = fx.make_acquisition(rng, _when(5, 5))
    fx.write_band_files(str(tmp_path / 'S2B_32TQM_20230505_0_L2A'), good,
                        1000, tags=True)
    with pytest.raises(ProductError, match='B05.tif: cannot be read'):
        build_monthly_composites(
            [str(folder), str(tmp_path / 'S2B_32TQM_20230505_0_L2A')],
            str(tmp_path / 'out'), 2023, months=[5, 6])
    assert not list((tmp_path / 'out').glob('*.tif'))


def test_existing_outputs_are_refused(june_safes, tmp_path):
    root, _ = june_safes
    out = str(tmp_path / 'out')
    build_monthly_composites([root], out, 2023, months=[7])
    with pytest.raises(FileExistsError, match='--overwrite'):
        build_monthly_composites([root], out, 2023, months=[7])
    build_monthly_composites([root], out, 2023, months=[7], overwrite=True)


def test_gap_filling_interpolates_between_months(june_safes, tmp_path):
    root, acqs = june_safes
    out = str(tmp_path / 'out')
    report = build_monthly_composites([root], out, 2023, months=[5, 6, 7, 8],
                                      resampling='nearest', fill_gaps=True)
    june = read(composite_path(out, 2023, 6))[0].astype(np.float64)
    july = read(composite_path(out, 2023, 7))[0].astype(np.float64)
    for month in (5, 8):  # no product: copies of the nearest month
        got = read(composite_path(out, 2023, month, 'filled'))[0]
        near = june if month == 5 else july
        ok = (near != COMPOSITE_NODATA).all(0) & \
            (july != COMPOSITE_NODATA).all(0) & \
            (june != COMPOSITE_NODATA).all(0)
        np.testing.assert_array_equal(got[:, ok], near[:, ok])
    # raw composites stay as they were
    assert (read(composite_path(out, 2023, 5))[0] == COMPOSITE_NODATA).all()
    rows = {r['month']: r for r in report['months']}
    jul_raw = read(composite_path(out, 2023, 7))[0]
    gaps = (jul_raw == COMPOSITE_NODATA).all(0)
    assert rows[7]['filled_share'] == pytest.approx(
        (gaps & (june != COMPOSITE_NODATA).all(0)).mean())
    assert rows[5]['filled_share'] > 0.9
    filled_jul = read(composite_path(out, 2023, 7, 'filled'))[0]
    # July gaps with June on one side and nothing after: June's value
    np.testing.assert_array_equal(filled_jul[:, gaps & (june !=
                                  COMPOSITE_NODATA).all(0)],
                                  june[:, gaps & (june !=
                                       COMPOSITE_NODATA).all(0)])


def test_reduce_observations_small_case():
    # 3 products, the first two of one day; 1 band pixel field of 1 x 2
    t, h, w = 3, 1, 2
    bands = [np.array([[[1500, 0]], [[1700, 1800]], [[1100, 1300]]],
                      np.uint16)] * 10
    scl = np.array([[[4, 4]], [[4, 9]], [[5, 4]]], np.uint8)
    offsets = np.array([[-1000] * 10, [-1000] * 10, [0] * 10], np.float32)
    gains = np.ones((t, 10), np.float32)
    days = np.array([1, 1, 2])
    comp, count, clear, neg = reduce_observations(
        bands, scl, offsets, gains, days, DEFAULT_MASK_CLASSES)
    # pixel 0: day 1 -> first product (500), day 2 -> 1100: median 800
    # pixel 1: product 0 nodata, product 1 cloud: day 1 none; day 2 1300
    assert comp.shape == (10, h, w) and comp.dtype == np.int16
    assert comp[0, 0].tolist() == [800, 1300]
    assert count[0].tolist() == [2, 1]
    assert clear.tolist() == [1, 1, 2] and neg.tolist() == [0, 0, 0]
    mean, _, _, _ = reduce_observations(bands, scl, offsets, gains, days,
                                     DEFAULT_MASK_CLASSES, 'mean')
    assert mean[0, 0].tolist() == [800, 1300]


def test_input_folder_without_products_is_refused(tmp_path):
    (tmp_path / 'notes.txt').write_text('nothing here')
    with pytest.raises(ProductError, match='holds no SAFE product'):
        find_products([str(tmp_path)])
    with pytest.raises(ProductError, match='no such file'):
        find_products([str(tmp_path / 'missing')])


def test_products_outside_the_year_are_skipped(june_safes, tmp_path):
    root, _ = june_safes
    grid = RasterGrid(fx.CRS_32632, Affine(10, 0, fx.ORIGIN[0], 0, -10,
                                           fx.ORIGIN[1]), 20, 20)
    report = build_monthly_composites([root], str(tmp_path / 'o'), 2024,
                                      months=[6], grid=grid)
    assert len(report['skipped_products']) == 4
    assert report['months'][0]['n_products'] == 0
    shutil.rmtree(tmp_path / 'o')


def test_offset_removed_twice_is_flagged(tmp_path):
    """An Earth Search item that wrongly says the offset is still there."""
    rng = np.random.default_rng(12)
    acq = fx.make_acquisition(rng, _when(6, 9))
    files = fx.write_band_files(str(tmp_path / 'es'), acq, 0,
                                naming='earth-search')
    item = fx.stac_item(acq, files, 'earth-search', offset_applied=False)
    stac = fx.write_item_collection(str(tmp_path / 'es.json'), [item])
    report = build_monthly_composites([stac], str(tmp_path / 'out'), 2023,
                                      months=[6], resampling='nearest')
    share = report['months'][0]['product_negative_red_share'][item['id']]
    red = acq.refl['B04']
    assert share == pytest.approx((red < 1000).mean(), abs=0.05)
    assert share > 0.05
