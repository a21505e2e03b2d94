"""Experiment choices of an any-window model describe the data, not it."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from h2crop.constants import ENMAP_SCALE, MODALITIES, NUM_MONTHS
from h2crop.engine.experiment import ExperimentConfigError, resolve_experiment
from h2crop.engine.runner_builder import prepare_cfg

from .test_runner import _load_tool
from .tiny_cfg import REPO

ANY = osp.join(REPO, 'configs', 'any_window', 'h2crop_demo_any_window.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def test_config_trains_on_everything_and_keeps_the_maximum():
    cfg = resolve_experiment(Config.fromfile(ANY))
    assert cfg.model.num_frames == NUM_MONTHS
    assert tuple(cfg.model.modalities) == MODALITIES
    assert cfg.model.any_window.end_months == tuple(range(4, 13))
    for name in LOADERS:
        ds = cfg[name].dataset
        assert ds.end_month == NUM_MONTHS
        assert tuple(ds.modalities) == MODALITIES


def test_test_at_another_window_and_subset(tmp_path):
    """tools/test.py CKPT --cfg-options end_month=6 modalities=[s2]."""
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': {}}, ckpt)  # no experiment record: unchecked
    args = _load_tool('test').parse_args([
        ANY, ckpt, '--work-dir', str(tmp_path), '--cfg-options',
        'end_month=6', "modalities=['s2']", 'tile_size=48'])
    cfg = prepare_cfg(args, 'test')
    ds = cfg.test_dataloader.dataset
    assert ds.end_month == 6 and tuple(ds.modalities) == ('s2', )
    # the model keeps its maximum and its EnMAP encoder (sized by the tile)
    assert cfg.model.num_frames == NUM_MONTHS
    assert tuple(cfg.model.modalities) == MODALITIES
    assert cfg.model.enmap_encoder.img_size == 48 // ENMAP_SCALE
    # and the resolved config resolves again at yet another window
    cfg.end_month = 9
    again = resolve_experiment(cfg)
    assert again.test_dataloader.dataset.end_month == 9
    assert again.model.num_frames == NUM_MONTHS


@pytest.mark.parametrize('options,message', [
    (dict(end_month=13), 'end_month=13'),
    (dict(modalities=('s2', 'radar')), 'radar'),
    ({'model.num_frames': 8, 'end_month': 10},
     'end_month=10 exceeds model.num_frames=8'),
    ({'model.modalities': ('s2', 'prior'), 'modalities': ('s2', 'enmap')},
     r"no \['enmap'\] input"),
    ({'model.num_frames': 0}, 'model.num_frames=0'),
])
def test_out_of_range_choices_are_refused(options, message):
    cfg = Config.fromfile(ANY)
    cfg.merge_from_dict(options)
    with pytest.raises(ExperimentConfigError, match=message):
        resolve_experiment(cfg)


def test_a_smaller_maximum_without_enmap_removes_the_encoder():
    cfg = Config.fromfile(ANY)
    cfg.merge_from_dict({'model.modalities': ('s2', 'prior'),
                         'model.num_frames': 8,
                         'model.any_window.enmap_drop': 0.0,
                         'modalities': ('s2', ), 'end_month': 5})
    cfg = resolve_experiment(cfg)
    assert cfg.model.enmap_encoder is None and cfg.model.num_frames == 8
    assert cfg.test_dataloader.dataset.end_month == 5
