"""A bad tile met in training: a clear stop and a resumable run, or skips."""
import os.path as osp
import shutil

import pytest

from h2crop.constants import DATA_LISTS_DIR, H5_DIR, H5_SUFFIX
from h2crop.datasets import H2CropDataError, H2CropDataset
from h2crop.registry import RUNNERS
from h2crop.utils import register_all_modules

from .tiny_cfg import tiny_runner_cfg

register_all_modules(init_default_scope=False)


def _copy_with_bad_tile(src: str, dst: str) -> tuple:
    root = shutil.copytree(src, dst)
    sid = open(osp.join(root, DATA_LISTS_DIR,
                        'train.txt')).read().split()[1]
    path = osp.join(root, H5_DIR, sid + H5_SUFFIX)
    return root, sid, path


def _truncate(path: str) -> bytes:
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 3])
    return data


@pytest.mark.slow
def test_bad_tile_stops_with_its_name_and_resume_continues(
        tiny_dataset_96, tmp_path):
    root, sid, path = _copy_with_bad_tile(tiny_dataset_96,
                                          str(tmp_path / 'data'))
    work = str(tmp_path / 'work')
    RUNNERS.build(tiny_runner_cfg(root, work, max_epochs=1)).train()
    good = _truncate(path)
    cfg = tiny_runner_cfg(root, work, max_epochs=2)
    cfg.resume = True
    with pytest.raises(H2CropDataError) as info:
        RUNNERS.build(cfg).train()
    message = str(info.value)
    assert sid + H5_SUFFIX in message
    assert 'training stopped at epoch 2' in message
    assert 'epoch_1.pth is intact' in message
    with open(path, 'wb') as f:  # the user repairs the tile
        f.write(good)
    resumed = RUNNERS.build(cfg)
    resumed.train()
    assert resumed.epoch == 2 and resumed.iter == 8


def test_skip_bad_tiles_skips_logs_and_counts(tiny_dataset_96, tmp_path):
    root, sid, path = _copy_with_bad_tile(tiny_dataset_96,
                                          str(tmp_path / 'data'))
    _truncate(path)
    cfg = tiny_runner_cfg(root, str(tmp_path / 'work'), max_epochs=1)
    cfg.train_dataloader.dataset.skip_bad_tiles = True
    runner = RUNNERS.build(cfg)
    runner.train()
    assert runner.iter == 4
    assert runner.message_hub.get_info('skipped_tiles') == {sid: 1}


def test_skip_bad_tiles_is_refused_for_evaluation(tiny_dataset_96):
    with pytest.raises(ValueError, match='training datasets only'):
        H2CropDataset(data_root=tiny_dataset_96,
                      ann_file='data_lists/val.txt', skip_bad_tiles=True,
                      test_mode=True)
