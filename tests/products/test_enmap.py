"""EnMAP L2A products -> the 218-band cube on the S2-aligned 30 m grid."""
import contextlib
import json
import logging
import os
import os.path as osp
from datetime import datetime

import numpy as np
import pytest
import rasterio
from affine import Affine
from mmengine.logging import MMLogger
from pyproj import Transformer
from rasterio.crs import CRS

from h2crop.constants import ENMAP_BANDS, ENMAP_SCALE
from h2crop.geo import RasterGrid, enmap_grid
from h2crop.products.enmap import (
    EnmapProductError,
    find_enmap_products,
    read_enmap_product,
    reference_from_metadata,
    select_bands,
)
from h2crop.products.enmap_bands import H2CROP_ENMAP_WAVELENGTHS
from h2crop.products.enmap_cube import (
    build_enmap_cube,
    report_path,
    source_path,
)
from h2crop.products.synthetic_enmap import (
    BAD_BAND_NUMBERS,
    L2A_WAVELENGTHS,
    NODATA,
    make_l2a_product,
    utm_grid,
)

JUNE = datetime(2022, 6, 11, 10, 42, 45)
JULY = datetime(2022, 7, 5, 10, 51, 2)
#: Cube bands whose wavelength lies in the visible (for the spot checks).
KEEP = [b for b in range(224) if b + 1 not in BAD_BAND_NUMBERS]


def s2_of(grid: RasterGrid, extra=(0, 0)) -> RasterGrid:
    """The S2 10 m grid whose enmap_grid is ``grid`` (plus extra px)."""
    return RasterGrid(grid.crs, grid.transform @ Affine.scale(
        1 / ENMAP_SCALE), grid.width * ENMAP_SCALE + extra[0],
        grid.height * ENMAP_SCALE + extra[1])


def read(path):
    """The raster's values and what the tests look at of its file."""
    with rasterio.open(path) as ds:
        info = dict(nodata=ds.nodata, count=ds.count, crs=ds.crs,
                    transform=ds.transform, width=ds.width,
                    height=ds.height, tiled=ds.profile['tiled'],
                    overviews=ds.overviews(1),
                    descriptions=ds.descriptions)
        return ds.read(), info


# ---------------------------------------------------------------- bands
def test_select_bands_drops_the_six_bad_bands_by_wavelength():
    sel = select_bands(L2A_WAVELENGTHS)
    assert len(sel.indices) == ENMAP_BANDS == len(H2CROP_ENMAP_WAVELENGTHS)
    assert [int(i) + 1 for i in sel.dropped] == list(BAD_BAND_NUMBERS)
    assert sel.indices.tolist() == KEEP
    assert sel.worst_offset == 0.0
    # another calibration, 0.4 nm off, in a shuffled file order
    rng = np.random.default_rng(1)
    perm = rng.permutation(224)
    shifted = np.asarray(L2A_WAVELENGTHS)[perm] + 0.4
    sel = select_bands(shifted)
    # the product bands chosen are the same wavelengths, in cube order
    assert np.allclose(shifted[sel.indices],
                       np.asarray(H2CROP_ENMAP_WAVELENGTHS) + 0.4)
    assert sel.worst_offset == pytest.approx(0.4)


def test_select_bands_refuses_a_band_set_that_does_not_match():
    wav = np.asarray(L2A_WAVELENGTHS)
    with pytest.raises(EnmapProductError, match=r'cube band 1 \(418\.2 nm\) '
                       r'has no product band within 2\.5 nm.*product band '
                       r'1, 422\.2 nm, 4\.0 nm off'):
        select_bands(wav + 4.0, source='P')
    # a missing VNIR band (band 50, 679.5 nm): its neighbours are 6.6 nm
    # away, so the order-keeping match fails at that band
    with pytest.raises(EnmapProductError,
                       match=r'P: bands do not match.*cube band 50 '
                       r'\(679\.5 nm\) has no product band within'):
        select_bands(np.delete(wav, 49), source='P')
    with pytest.raises(EnmapProductError, match='100 bands; the cube needs '
                       '218'):
        select_bands(wav[:100], source='P')
    assert select_bands(wav + 4.0, tolerance=5).worst_offset == \
        pytest.approx(4.0)


def test_the_218_band_rule_fits_the_published_band_statistics():
    """The inferred selection against the dataset's published means."""
    from ..conftest import require_shared
    path = require_shared('band_stats.json')
    with open(path, encoding='utf-8') as f:
        stats = json.load(f)['EnMAP']
    mean, std = np.asarray(stats['mean']), np.asarray(stats['std'])
    wav = np.asarray(H2CROP_ENMAP_WAVELENGTHS)
    assert len(mean) == len(wav)

    def at(lo, hi, fn):
        sel = (wav >= lo) & (wav <= hi)
        return wav[sel][fn(mean[sel])]

    # vegetation features of the mean spectrum at their wavelengths
    assert 545 <= at(500, 600, np.argmax) <= 565       # green peak
    assert 665 <= at(620, 700, np.argmin) <= 685       # red absorption
    jump = np.argmax(np.diff(mean[(wav > 650) & (wav < 800)]))
    assert 695 <= wav[(wav > 650) & (wav < 800)][jump] <= 725  # red edge
    o2 = (wav > 740) & (wav < 790)
    local = mean[o2] - np.interp(wav[o2], wav[o2][[0, -1]],
                                 mean[o2][[0, -1]])
    assert 758 <= wav[o2][np.argmin(local)] <= 770     # O2-A dip
    # the largest jump lies across the 1.4 um gap of the selection, the
    # noisiest band is the first after the 1.9 um gap
    big = int(np.argmax(np.abs(np.diff(np.log(mean)))))
    assert wav[big + 1] - wav[big] > 100
    assert wav[int(np.argmax(std))] == pytest.approx(1939.4)
    assert wav[int(np.argmax(std)) - 1] == pytest.approx(1759.8)


def test_reference_from_a_metadata_file(tmp_path):
    fx = make_l2a_product(str(tmp_path), utm_grid(4, 4), JUNE,
                          wavelength_shift=3.0)
    ref = reference_from_metadata(fx.metadata, tolerance=4)
    assert np.allclose(ref, np.asarray(H2CROP_ENMAP_WAVELENGTHS) + 3.0)
    # products of that calibration then match with the default tolerance
    assert select_bands(fx.wavelengths, ref).worst_offset == 0.0
    with pytest.raises(EnmapProductError, match='--bands-like'):
        reference_from_metadata(fx.metadata)


# ---------------------------------------------------------------- products
def test_find_products_reads_the_metadata(tmp_path):
    old = make_l2a_product(str(tmp_path), utm_grid(6, 6), JUNE)
    new = make_l2a_product(str(tmp_path / 'more'), utm_grid(6, 6), JULY,
                           tile=4)
    found = find_enmap_products([str(tmp_path)])
    assert [p.name for p in found] == [new.name, old.name]  # latest first
    p = found[1]
    assert p.start_time.isoformat() == '2022-06-11T10:42:45.123456+00:00'
    assert p.count == 224 and p.level == 'L2A' and p.nodata == NODATA
    assert np.allclose(p.wavelengths, L2A_WAVELENGTHS)
    assert p.gains[0] == pytest.approx(1e-4) and p.offsets[0] == 0
    assert {'QL_QUALITY_CLOUD', 'QL_QUALITY_CIRRUS', 'QL_PIXELMASK',
            'QL_QUALITY_CLASSES'} <= set(p.layers)
    # a METADATA.XML file works as well; twice the same product does not
    assert find_enmap_products([old.metadata])[0].name == old.name
    with pytest.raises(EnmapProductError, match='also given'):
        find_enmap_products([old.metadata, old.folder])


def test_bad_products_are_refused_naming_the_file(tmp_path):
    grid = utm_grid(4, 4)
    fx = make_l2a_product(str(tmp_path / 'a'), grid, JUNE)
    os.remove(fx.metadata)
    with pytest.raises(EnmapProductError,
                       match=f'{fx.folder}: an EnMAP spectral image '
                       'without its -METADATA.XML'):
        find_enmap_products([str(tmp_path / 'a')])
    fx = make_l2a_product(str(tmp_path / 'b'), grid, JUNE)
    os.remove(fx.path('SPECTRAL_IMAGE'))
    with pytest.raises(EnmapProductError, match='SPECTRAL_IMAGE.TIF not '
                       'found'):
        read_enmap_product(fx.metadata)
    fx = make_l2a_product(str(tmp_path / 'c'), grid, JUNE)
    with open(fx.path('SPECTRAL_IMAGE'), 'r+b') as f:
        f.truncate(200)
    with pytest.raises(EnmapProductError, match='SPECTRAL_IMAGE.TIF: cannot '
                       'read the spectral image'):
        read_enmap_product(fx.metadata)
    fx = make_l2a_product(str(tmp_path / 'd'), grid, JUNE,
                          dn=np.zeros((223, 4, 4), np.int16))
    with pytest.raises(EnmapProductError, match='bands do not match'):
        # 223 bands in image and metadata: 2445.5 nm is missing
        build_enmap_cube([fx.folder], s2_of(grid), str(tmp_path / 'o.tif'))
    text = open(fx.metadata, encoding='utf-8').read()
    with open(fx.metadata, 'w', encoding='utf-8') as f:
        f.write(text.replace('<bandID number="223">', '<bandID number="x">'))
    with pytest.raises(EnmapProductError, match='number=.x.'):
        read_enmap_product(fx.metadata)
    fx = make_l2a_product(str(tmp_path / 'e'), grid, JUNE, level='L1C')
    with pytest.raises(EnmapProductError, match='processing level L1C'):
        read_enmap_product(fx.metadata)
    (tmp_path / 'p.zip').write_bytes(b'PK')
    with pytest.raises(EnmapProductError, match='unzip'):
        find_enmap_products([str(tmp_path / 'p.zip')])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(EnmapProductError, match='empty: no EnMAP product'):
        find_enmap_products([str(tmp_path / 'empty')])
    with pytest.raises(EnmapProductError, match='no such file'):
        find_enmap_products([str(tmp_path / 'nowhere')])
    with open(fx.metadata, 'w', encoding='utf-8') as f:
        f.write('<level_X><base>')
    with pytest.raises(EnmapProductError, match='cannot read as XML'):
        read_enmap_product(fx.metadata)


def test_band_count_of_the_image_must_match_the_metadata(tmp_path):
    grid = utm_grid(4, 4)
    fx = make_l2a_product(str(tmp_path), grid, JUNE)
    with rasterio.open(fx.path('SPECTRAL_IMAGE'), 'w', driver='GTiff',
                       width=4, height=4, count=223, dtype='int16',
                       crs=grid.crs, transform=grid.transform) as dst:
        dst.write(fx.dn[:223])
    with pytest.raises(EnmapProductError,
                       match=r'SPECTRAL_IMAGE.TIF: 223 bands, but .*'
                       r'METADATA.XML describes 224'):
        read_enmap_product(fx.metadata)


def test_missing_or_corrupt_mask_is_named(tmp_path):
    grid = utm_grid(4, 4)
    fx = make_l2a_product(str(tmp_path), grid, JUNE)
    os.remove(fx.path('QL_QUALITY_HAZE'))
    out = str(tmp_path / 'cube.tif')
    with pytest.raises(EnmapProductError, match=r'QL_QUALITY_HAZE.TIF '
                       r'\(needed by --mask haze\)'):
        build_enmap_cube([fx.folder], s2_of(grid), out)
    assert not osp.exists(out)
    # without that mask it builds; a corrupt cloud mask is named
    with open(fx.path('QL_QUALITY_CLOUD'), 'wb') as f:
        f.write(b'II*\x00garbage')
    with pytest.raises(EnmapProductError, match='QL_QUALITY_CLOUD.TIF: '
                       'cannot read the quality layer'):
        build_enmap_cube([fx.folder], s2_of(grid), out,
                         masks=('cloud', 'snow'))
    build_enmap_cube([fx.folder], s2_of(grid), out, masks=('snow', ))
    assert osp.exists(out)


# ---------------------------------------------------------------- cube
def test_cube_values_masks_and_layout(tmp_path):
    grid = utm_grid(12, 12)
    h = w = 12
    layers = {k: np.zeros((h, w), np.uint8) for k in (
        'QL_QUALITY_CLOUD', 'QL_QUALITY_CIRRUS', 'QL_QUALITY_HAZE',
        'QL_QUALITY_SNOW', 'QL_QUALITY_CLOUDSHADOW')}
    layers['QL_QUALITY_CLOUD'][1, 1:3] = 1
    layers['QL_QUALITY_CIRRUS'][2, 5] = 2          # medium cirrus
    layers['QL_QUALITY_HAZE'][3, 7] = 1
    layers['QL_QUALITY_SNOW'][4, 9] = 1
    layers['QL_QUALITY_CLOUDSHADOW'][5, 0] = 1
    background = np.zeros((h, w), bool)
    background[9:, 10:] = True
    gains = np.full(224, 2e-4)
    offsets = np.full(224, -0.01)
    fx = make_l2a_product(str(tmp_path), grid, JUNE, layers=layers,
                          background=background, gains=gains,
                          offsets=offsets, nodata_tag=False)
    fx.dn[40, 6, 6] = NODATA                       # one band lost
    with rasterio.open(fx.path('SPECTRAL_IMAGE'), 'r+') as ds:
        ds.write(fx.dn)
    out = str(tmp_path / 'out' / 'cube.tif')
    report = build_enmap_cube([fx.folder], s2_of(grid), out)
    cube, ds = read(out)
    expected = expected_cube(fx)
    assert cube.dtype == np.int16 and cube.shape == (218, h, w)
    np.testing.assert_array_equal(cube, expected)
    # spot check against the formula: (DN x 2e-4 - 0.01) x 1e4
    b = KEEP[10]
    assert cube[10, 0, 0] == round((int(fx.dn[b, 0, 0]) * 2e-4 - 0.01) * 1e4)
    for r, c in ((1, 1), (2, 5), (3, 7), (4, 9), (5, 0), (10, 11), (6, 6)):
        assert (cube[:, r, c] == NODATA).all()
    assert ds['nodata'] == NODATA and ds['count'] == 218
    assert ds['tiled'] and ds['overviews']
    assert ds['descriptions'][0] == '418.2 nm'
    assert ds['descriptions'][-1] == '2445.5 nm'
    masked = 2 + 1 + 1 + 1 + 1 + 1 + 6
    assert report['products'][0]['used_share'] == pytest.approx(
        (h * w - masked) / (h * w))
    assert report['products'][0]['data_share'] == pytest.approx(
        (h * w - 6) / (h * w))
    assert report['covered_share'] == pytest.approx((h * w - masked) /
                                                    (h * w))
    assert report['products'][0]['bands_dropped'] == list(BAD_BAND_NUMBERS)
    with open(report_path(out), encoding='utf-8') as f:
        assert json.load(f)['products'][0]['name'] == fx.name
    src, _ = read(source_path(out))
    assert ((src[0] == 1) == (cube[0] != NODATA)).all()
    # fewer masks: the haze pixel is kept
    out2 = str(tmp_path / 'cube2.tif')
    build_enmap_cube([fx.folder], s2_of(grid), out2,
                     masks=('cloud', 'background'))
    cube2, _ = read(out2)
    np.testing.assert_array_equal(cube2[:, 3, 7], expected_cube(
        fx, masks=())[:, 3, 7])
    assert (cube2[:, 1, 1] == NODATA).all()


def test_pixelmask_and_water_are_opt_in(tmp_path):
    grid = utm_grid(6, 6)
    pm = np.zeros((224, 6, 6), np.uint8)
    pm[20, 2, 3] = 1                     # a defective element, kept band
    pm[130, 4, 4] = 1                    # in a dropped band: no effect
    classes = np.ones((6, 6), np.uint8)
    classes[0, :] = 2
    fx = make_l2a_product(str(tmp_path), grid, JUNE, layers=dict(
        QL_PIXELMASK=pm, QL_QUALITY_CLASSES=classes))
    out = str(tmp_path / 'c.tif')
    build_enmap_cube([fx.folder], s2_of(grid), out)
    cube, _ = read(out)
    assert (cube != NODATA).all()
    build_enmap_cube([fx.folder], s2_of(grid), out, overwrite=True,
                     masks=('pixelmask', 'water'))
    cube, _ = read(out)
    bad = cube[0] == NODATA
    expect = np.zeros((6, 6), bool)
    expect[2, 3] = True
    expect[0, :] = True
    np.testing.assert_array_equal(bad, expect)


def test_grid_alignment_three_by_three(tmp_path):
    # an S2 grid whose origin is not a multiple of 30 m and whose size is
    # not a multiple of 3; the product starts 2 columns / 1 row before it
    s2 = RasterGrid(CRS.from_epsg(32632),
                    Affine(10, 0, 500073.0, 0, -10, 5300052.0), 31, 20)
    cube_grid = enmap_grid(s2)
    assert (cube_grid.width, cube_grid.height) == (11, 7)
    product = RasterGrid(s2.crs, cube_grid.transform @ Affine.translation(
        -2, -1), 14, 10)
    fx = make_l2a_product(str(tmp_path), product, JUNE)
    out = str(tmp_path / 'cube.tif')
    report = build_enmap_cube([fx.folder], s2, out)
    cube, ds = read(out)
    assert ds['transform'].almost_equals(s2.transform @ Affine.scale(3))
    assert (ds['width'], ds['height']) == (11, 7)
    # cube pixel (i, j) covers S2 pixels 3i..3i+2 and holds product pixel
    # (i + 1, j + 2)
    x, y = ds['transform'] @ (4, 5)
    assert (x, y) == pytest.approx(s2.transform @ (12, 15))
    np.testing.assert_array_equal(cube, expected_cube(fx)[:, 1:8, 2:13])
    assert report['products'][0]['resampled'] is False


def test_mosaic_latest_clear_first(tmp_path):
    a_grid = utm_grid(10, 8)                      # June, the whole area
    b_grid = utm_grid(6, 8, origin=(500010.0 + 4 * 30, 5300040.0))  # July
    cloud = np.zeros((8, 6), np.uint8)
    cloud[2:5, 1:3] = 1
    june_cloud = np.zeros((8, 10), np.uint8)
    june_cloud[3, 6] = 1                         # cloudy in both dates
    june = make_l2a_product(str(tmp_path / 'a'), a_grid, JUNE,
                            layers=dict(QL_QUALITY_CLOUD=june_cloud))
    july = make_l2a_product(str(tmp_path / 'b'), b_grid, JULY,
                            dn=june.dn[:, :, 4:] + 500,
                            layers=dict(QL_QUALITY_CLOUD=cloud))
    out = str(tmp_path / 'cube.tif')
    # the order given does not matter
    report = build_enmap_cube([june.folder, july.folder], s2_of(a_grid),
                              out)
    cube, _ = read(out)
    e_june, e_july = expected_cube(june), expected_cube(july)
    expect = e_june.copy()
    take = e_july[0] != NODATA
    expect[:, :, 4:][:, take] = e_july[:, take]
    np.testing.assert_array_equal(cube, expect)
    assert (cube[:, 3, 6] == NODATA).all()       # cloudy in both
    assert cube[0, 3, 5] == e_june[0, 3, 5]      # July cloudy: June fills
    assert cube[0, 0, 5] == e_july[0, 0, 1]      # July clear: July wins
    src, _ = read(source_path(out))
    assert [p['name'] for p in report['products']] == [july.name,
                                                       june.name]
    assert src[0, 0, 5] == 1 and src[0, 3, 5] == 2 and src[0, 0, 0] == 2
    assert src[0, 3, 6] == 0
    july_rep, june_rep = report['products']
    assert july_rep['used_share'] == pytest.approx((48 - 6) / 80)
    assert june_rep['used_share'] == pytest.approx((80 - 42 - 1) / 80)
    assert july_rep['clear_share'] == pytest.approx(42 / 48)
    assert report['covered_share'] == pytest.approx(79 / 80)


@contextlib.contextmanager
def warnings_logged():
    """Collect the messages of the current MMLogger's warnings."""
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_reprojected_product_does_not_bleed_clouds(tmp_path):
    # the S2 grid in UTM 32N; the product in UTM 31N (its neighbour zone)
    s2 = RasterGrid(CRS.from_epsg(32632),
                    Affine(10, 0, 310000.0, 0, -10, 5300010.0), 72, 60)
    cube_grid = enmap_grid(s2)
    other = CRS.from_epsg(32631)
    from rasterio.warp import transform_bounds
    left, bottom, right, top = transform_bounds(
        s2.crs, other, *cube_grid.bounds())
    pgrid = RasterGrid.from_bounds(
        other, (left - 60, bottom - 60, right + 60, top + 60), 30.0)
    h, w = pgrid.height, pgrid.width
    dn = np.full((224, h, w), 2000, np.int16)
    cloud = np.zeros((h, w), np.uint8)
    cloud[:, : w // 2] = 1
    dn[:, cloud > 0] = 9000                      # bright clouds
    fx = make_l2a_product(str(tmp_path), pgrid, JUNE, dn=dn,
                          layers=dict(QL_QUALITY_CLOUD=cloud))
    out = str(tmp_path / 'cube.tif')
    with warnings_logged() as log:
        report = build_enmap_cube([fx.folder], s2, out)
    assert any(f'{fx.name} is in EPSG:32631, the S2 grid in EPSG:32632: '
               'reprojected' in m for m in log), log
    cube, ds = read(out)
    assert ds['crs'] == s2.crs and (ds['width'], ds['height']) == (24, 20)
    valid = cube[0] != NODATA
    assert 0.3 < valid.mean() < 0.7              # the clear half
    # bilinear of clear pixels only: exactly the clear value, no cloud
    assert (cube[:, valid] == 2000).all()
    assert report['products'][0]['resampled'] is True
    assert report['products'][0]['crs'] == 'EPSG:32631'
    # blocks of a few rows give the same cube as one block (no seams)
    small = str(tmp_path / 'small.tif')
    r_small = build_enmap_cube([fx.folder], s2, small, max_block_mb=0.05)
    assert r_small['block_rows'] < 20
    np.testing.assert_array_equal(read(small)[0], cube)
    # independently: a cube pixel is clear exactly when the product pixel
    # under its centre is clear (masks act as nearest neighbour)
    to_src = Transformer.from_crs(s2.crs, other, always_xy=True)
    rows, cols = np.mgrid[0:20, 0:24]
    xs, ys = cube_grid.transform @ (cols + 0.5, rows + 0.5)
    px, py = ~pgrid.transform @ to_src.transform(xs, ys)
    under = cloud[np.floor(py).astype(int), np.floor(px).astype(int)] == 0
    np.testing.assert_array_equal(valid, under)


def test_no_overlap_names_both_footprints(tmp_path):
    grid = utm_grid(4, 4)
    fx = make_l2a_product(str(tmp_path), grid, JUNE)
    far = RasterGrid(grid.crs, Affine(10, 0, 700000, 0, -10, 5000000), 30,
                     30)
    with pytest.raises(EnmapProductError) as err:
        build_enmap_cube([fx.folder], far, str(tmp_path / 'c.tif'),
                         s2_path='s2.tif')
    msg = str(err.value)
    assert 'no EnMAP product overlaps the S2 grid s2.tif (EPSG:32632, ' \
        'bounds (700000.0, 4999700.0, 700300.0, 5000000.0))' in msg
    assert f'{fx.name} {fx.path("SPECTRAL_IMAGE")} covers 0.0% (bounds ' \
        '(500010.0, 5299920.0, 500130.0, 5300040.0))' in msg


def test_existing_outputs_are_refused(tmp_path):
    grid = utm_grid(4, 4)
    fx = make_l2a_product(str(tmp_path), grid, JUNE)
    out = str(tmp_path / 'c.tif')
    with open(source_path(out), 'w') as f:
        f.write('mine')
    with pytest.raises(FileExistsError, match='c_source.tif exists; pass '
                       '--overwrite'):
        build_enmap_cube([fx.folder], s2_of(grid), out)
    assert not osp.exists(out)
    build_enmap_cube([fx.folder], s2_of(grid), out, overwrite=True)
    assert osp.exists(out) and not [n for n in os.listdir(tmp_path)
                                    if n.startswith('.')]


def test_a_cube_band_without_data_is_refused(tmp_path):
    grid = utm_grid(4, 4)
    fx = make_l2a_product(str(tmp_path), grid, JUNE)
    fx.dn[60] = NODATA                           # a kept band is bad
    with rasterio.open(fx.path('SPECTRAL_IMAGE'), 'r+') as ds:
        ds.write(fx.dn)
    out = str(tmp_path / 'c.tif')
    with pytest.raises(EnmapProductError, match=r'band 61 \(756\.1 nm, cube '
                       r'band 61\) is no-data in every pixel'):
        build_enmap_cube([fx.folder], s2_of(grid), out)
    assert not osp.exists(out)


# ---------------------------------------------------------------- CLI
def test_cli(tmp_path, capsys):
    from tools.dataset_converters.enmap_cube import main
    grid = utm_grid(6, 6)
    fx = make_l2a_product(str(tmp_path / 'p'), grid, JUNE)
    s2 = s2_of(grid)
    like = str(tmp_path / 's2.tif')
    with rasterio.open(like, 'w', driver='GTiff', width=s2.width,
                       height=s2.height, count=1, dtype='int16',
                       crs=s2.crs, transform=s2.transform) as dst:
        dst.write(np.zeros((1, s2.height, s2.width), np.int16))
    out = str(tmp_path / 'cube.tif')
    assert main([str(tmp_path / 'p'), '--like', like, '--out', out,
                 '--mask', 'cloud,haze']) == 0
    assert 'cube.tif: 218 bands, 6 x 6 px, 100.0% of the grid' in \
        capsys.readouterr().out
    np.testing.assert_array_equal(read(out)[0], expected_cube(fx))
    assert main([fx.folder, '--like', like, '--out', out]) == 2
    assert 'error: ' in capsys.readouterr().err
    left, bottom, right, top = grid.bounds()
    assert main([fx.folder, '--crs', 'EPSG:32632', '--bounds', str(left),
                 str(bottom), str(right), str(top), '--out', out,
                 '--overwrite', '--mask', 'cloud,fog']) == 2
    assert "error: --mask 'fog': unknown" in capsys.readouterr().err
    assert main([fx.folder, '--crs', 'EPSG:32632', '--bounds', str(left),
                 str(bottom), str(right), str(top), '--out', out,
                 '--overwrite']) == 0
    assert main([fx.folder, '--bounds', '0', '0', '1', '1', '--out',
                 out]) == 2
    assert '--bounds needs --crs' in capsys.readouterr().err


def test_cli_help_states_defaults(monkeypatch):
    from ..tools.test_tool_help import _parser_of
    parser = _parser_of('tools/dataset_converters/enmap_cube.py',
                        monkeypatch)
    grid_options = ('like', 'bounds')  # one of them is required
    for action in parser._actions:
        if action.option_strings and action.dest != 'help' and not \
                action.required and action.dest not in grid_options:
            assert 'default' in action.help, action.option_strings


def expected_cube(fx, masks=('QL_QUALITY_CLOUD',
                                      'QL_QUALITY_CIRRUS',
                                      'QL_QUALITY_HAZE', 'QL_QUALITY_SNOW',
                                      'QL_QUALITY_CLOUDSHADOW')
                  ) -> np.ndarray:
    """The cube a product gives on its own grid, computed independently.

    Bands: the 224 minus the six bad ones (by band number); value:
    round((DN x gain + offset) x 10^4); -32768 where a quality layer flags
    the pixel, the pixel is background or a kept band is no-data.
    """
    keep = [b for b in range(fx.dn.shape[0]) if b + 1 not in
            BAD_BAND_NUMBERS]
    dn = fx.dn.astype(np.float64)[keep]
    gains = fx.gains[keep][:, None, None]
    offsets = fx.offsets[keep][:, None, None]
    out = np.rint((dn * gains + offsets) * 10000)
    out = np.clip(out, -32767, 32767).astype(np.int16)
    bad = (fx.dn[keep] == NODATA).any(0) | \
        (fx.layers['QL_QUALITY_CLASSES'] == 3)
    for layer in masks:
        bad |= fx.layers[layer] > 0
    out[:, bad] = NODATA
    return out
