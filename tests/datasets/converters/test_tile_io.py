"""Shared tile writer: dtypes enforced, parcel ids and attributes kept."""
import h5py
import numpy as np
import pytest

from h2crop.constants import H5_ATTR_CRS
from h2crop.datasets.checker import check_tile
from h2crop.datasets.h5io import (
    PARCEL_ID,
    read_tile,
    tile_has_parcel_ids,
    write_tile,
)
from h2crop.datasets.synthetic import synthetic_taxonomy


def _arrays(size=6):
    return {'s2': np.ones((12, 10, size, size), np.int16),
            'enmap': np.ones((218, size // 3, size // 3), np.int16),
            'label': np.zeros((4, size, size), np.uint8),
            'prior': np.zeros((4, size, size), np.uint8)}


def test_write_tile_keeps_parcel_ids_and_attributes(tmp_path):
    path = str(tmp_path / 't.h5')
    arrays = dict(_arrays(), **{PARCEL_ID: np.arange(36, dtype=np.uint32)
                                .reshape(6, 6)})
    write_tile(path, arrays, attrs={H5_ATTR_CRS: 'WKT'})
    assert tile_has_parcel_ids(path)
    got = read_tile(path, ('s2', ), parcel_id=True)
    assert np.array_equal(got[PARCEL_ID], arrays[PARCEL_ID])
    assert PARCEL_ID not in read_tile(path, ('s2', ))
    with h5py.File(path, 'r') as f:
        assert f.attrs[H5_ATTR_CRS] == 'WKT'
    assert not check_tile(path, synthetic_taxonomy(0))


def test_write_tile_refuses_wrong_dtypes_and_checker_flags_them(tmp_path):
    path = str(tmp_path / 't.h5')
    bad = dict(_arrays(), **{PARCEL_ID: np.zeros((6, 6), np.int64)})
    with pytest.raises(ValueError, match='parcel_id has dtype int64'):
        write_tile(path, bad)
    write_tile(path, _arrays())
    assert not tile_has_parcel_ids(path)
    with h5py.File(path, 'a') as f:
        f[PARCEL_ID] = np.zeros((5, 6), np.uint32)
    problems = [str(p) for p in check_tile(path, synthetic_taxonomy(0))]
    assert any('parcel_id' in p and '(expected (6, 6))' in p
               for p in problems)
