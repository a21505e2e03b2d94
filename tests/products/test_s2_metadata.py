"""Band names, metadata parsing, the level check and the offset rules."""
import datetime as dt

import numpy as np
import pytest

from h2crop.constants import S2_BAND_NAMES
from h2crop.products import ProductError, resolve_radiometry
from h2crop.products import synthetic_s2 as fx
from h2crop.products.s2_metadata import (
    PRODUCT_BANDS,
    check_level,
    parse_baseline,
    product_band,
)
from h2crop.products.safe import parse_metadata, parse_name, read_safe


def test_band_names():
    assert PRODUCT_BANDS == ('B02', 'B03', 'B04', 'B05', 'B06', 'B07',
                             'B08', 'B8A', 'B11', 'B12')
    assert [product_band(b) for b in S2_BAND_NAMES] == list(PRODUCT_BANDS)
    assert product_band('b8a') == 'B8A' and product_band('B1') == 'B01'
    with pytest.raises(ValueError):
        product_band('SCL')


def test_baselines():
    assert parse_baseline('05.09') == (5, 9)
    assert parse_baseline('N0400') == (4, 0)
    assert parse_baseline('N05.11') == (5, 11)
    assert parse_baseline('latest') is None
    parts = parse_name('S2B_MSIL2A_20230615T103629_N0509_R008_T32TQM_'
                       '20230615T134516')
    assert parts['baseline'] == '0509' and parts['tile'] == '32TQM'


def test_level_check():
    check_level('p', 'S2MSI2A', 'sentinel-2-l2a', 'L2')
    for value in ('S2MSI1C', 'sentinel-2-l1c', 'MSIL1C', 'L1C'):
        with pytest.raises(ProductError, match='Level-1'):
            check_level('p', value)


def test_offset_rules():
    stated = {b: -1000.0 for b in PRODUCT_BANDS}
    warned = []
    # provider already removed it (Earth Search), whatever raster:bands say
    r = resolve_radiometry('p', (5, 9), offset_applied=True,
                           stated_offsets=stated)
    assert set(r.offsets.values()) == {0.0}
    # before 04.00 there is none; a stated one is ignored with a warning
    r = resolve_radiometry('p', (3, 0), stated_offsets=stated,
                           warn=warned.append)
    assert set(r.offsets.values()) == {0.0} and 'predates' in warned[0]
    r = resolve_radiometry('p', (4, 0), stated_offsets=stated)
    assert set(r.offsets.values()) == {-1000.0}
    with pytest.raises(ProductError, match='none for'):
        resolve_radiometry('p', (4, 0), stated_offsets={'B02': -1000})
    with pytest.raises(ProductError, match='--assume-offset') as err:
        resolve_radiometry('S2X', (5, 9))
    assert 'S2X' in str(err.value) and '05.09' in str(err.value)
    with pytest.raises(ProductError, match='no processing baseline'):
        resolve_radiometry('S2X', None)
    r = resolve_radiometry('p', None, assume_offset=0)
    assert set(r.offsets.values()) == {0.0}
    # another quantification value rescales to reflectance x 10000
    r = resolve_radiometry('p', (5, 9), stated_offsets=stated,
                           quantification={b: 20000 for b in PRODUCT_BANDS})
    assert set(r.gains.values()) == {0.5}


def test_safe_metadata_is_read(tmp_path):
    rng = np.random.default_rng(0)
    when = dt.datetime(2023, 6, 15, 10, 36, 29, tzinfo=dt.timezone.utc)
    path = fx.write_safe(str(tmp_path), fx.make_acquisition(rng, when))
    prod = read_safe(path)
    md = prod.metadata
    assert md.level_tag == 'Level-2A_User_Product'
    assert md.product_type == 'S2MSI2A' and md.baseline == (5, 9)
    assert md.quantification == 10000.0
    assert md.offsets['B8A'] == -1000.0 and len(md.offsets) == 13
    assert prod.datetime == when.replace(microsecond=24000)
    assert prod.files['B02'].endswith('_B02_10m.jp2')
    assert prod.files['B05'].endswith('_B05_20m.jp2')
    assert '/R20m/' in prod.files['SCL']
    # offsets without Spectral_Information: bandId in the standard order
    xml = (b'<Level-2A_User_Product><BOA_ADD_OFFSET_VALUES_LIST>'
           b'<BOA_ADD_OFFSET band_id="8">-999</BOA_ADD_OFFSET>'
           b'</BOA_ADD_OFFSET_VALUES_LIST></Level-2A_User_Product>')
    assert parse_metadata(xml, 'x').offsets == {'B8A': -999.0}
    with pytest.raises(ProductError, match='not readable XML'):
        parse_metadata(b'<a>', 'bad.xml')
