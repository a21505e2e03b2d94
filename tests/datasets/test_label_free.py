"""Label-free tiles (new areas) are read in test mode only."""
import os.path as osp

import h5py
import pytest

from h2crop.constants import H5_DIR, LEVELS, S2
from h2crop.datasets import H2CropDataset
from h2crop.datasets.h5io import H2CropDataError, read_tile

from .._synthetic import make_tiny_dataset

PIPE = [dict(type='LoadH2CropH5'), dict(type='PackH2CropInputs')]


def _drop_labels(root):
    ids = open(osp.join(root, 'data_lists', 'test.txt')).read().split()
    for sid in ids:
        with h5py.File(osp.join(root, H5_DIR, sid + '.h5'), 'a') as h5:
            del h5['label']
    return ids


def test_label_free_tiles_in_test_mode(tmp_path):
    root = make_tiny_dataset(tmp_path, num_samples=6, size=24)
    ids = _drop_labels(root)
    path = osp.join(root, H5_DIR, ids[0] + '.h5')
    arrays = read_tile(path, (S2, 'enmap', 'prior'), require_label=False)
    assert 'label' not in arrays and arrays[S2].shape == (12, 10, 24, 24)
    with pytest.raises(H2CropDataError, match='label'):
        read_tile(path, (S2, ))
    ds = H2CropDataset(root, 'data_lists/test.txt', pipeline=PIPE,
                       test_mode=True, require_label=False)
    item = ds[0]
    assert 'gt_sem_seg' not in item['data_samples']
    assert item['inputs'][S2].shape == (12, 10, 24, 24)
    assert item['inputs']['prior'].shape == (len(LEVELS), 24, 24)
    # the label is still required by default (training / validation)
    strict = H2CropDataset(root, 'data_lists/test.txt', pipeline=PIPE,
                           test_mode=True)
    with pytest.raises(H2CropDataError, match='label'):
        strict.pipeline(strict.get_data_info(0))
    with pytest.raises(ValueError, match='test_mode'):
        H2CropDataset(root, 'data_lists/test.txt', pipeline=PIPE,
                      require_label=False)
    # tiles with a label still carry it when labels are optional
    with_label = H2CropDataset(root, 'data_lists/train.txt', pipeline=PIPE,
                               test_mode=True, require_label=False)
    assert 'gt_sem_seg' in with_label[0]['data_samples']
