"""Id-range errors name the H5 key of the tile, not the content name."""
import os.path as osp

import h5py
import pytest

from h2crop.constants import DATA_LISTS_DIR, H5_DIR, H5_SUFFIX, PRIOR
from h2crop.datasets.h5io import H2CropDataError, read_tile

from .._synthetic import make_tiny_dataset


@pytest.mark.parametrize('spelling,key', [('loader', 'priors'),
                                          ('readme', 'prior')])
def test_prior_id_error_names_the_h5_key(tmp_path, spelling, key):
    root = make_tiny_dataset(tmp_path, num_samples=3, size=24,
                             spelling=spelling)
    sid = open(osp.join(root, DATA_LISTS_DIR, 'train.txt')).read().split()[0]
    path = osp.join(root, H5_DIR, sid + H5_SUFFIX)
    with h5py.File(path, 'r+') as f:
        data = f[key][()]
        data[1, 0, 0] = 200
        f[key][...] = data
    with pytest.raises(H2CropDataError) as info:
        read_tile(path, (PRIOR, ), num_classes=(7, 37, 83, 102))
    assert f'{path}: {key}: level2 ids up to 200' in str(info.value)
