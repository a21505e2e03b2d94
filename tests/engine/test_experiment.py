"""Experiment choices stated once reach every place that uses them."""
import os.path as osp

import pytest
from mmengine.config import Config

from h2crop.constants import ENMAP_SCALE, TAXONOMY_FILE
from h2crop.engine.experiment import (
    RESOLVED_KEY,
    ExperimentConfigError,
    resolve_experiment,
)
from h2crop.engine.runner_builder import prepare_cfg

from .test_runner import _load_tool
from .tiny_cfg import DEMO, REPO

PAPER = osp.join(REPO, 'configs', 'hyper_benefits', 'crops_S2_H_P_jun.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _datasets(cfg):
    return [cfg[name].dataset for name in LOADERS]


def _load_tile_size(ds):
    return [s['tile_size'] for s in ds.pipeline
            if s['type'] == 'LoadH2CropH5']


def test_cli_choices_reach_loaders_model_evaluators_and_schedule():
    args = _load_tool('train').parse_args([
        PAPER, '--cfg-options', 'max_epochs=1', 'end_month=12',
        'tile_size=48', 'data_root=/data/x', 'levels=[level1,level2]'])
    cfg = prepare_cfg(args, 'train')
    assert cfg.train_cfg.max_epochs == 1
    cosine = [s for s in cfg.param_scheduler if s.get('by_epoch', True)]
    assert cosine and all(s.end == 1 for s in cosine)
    assert cfg.model.num_frames == 12
    assert cfg.model.enmap_encoder.img_size == 48 // ENMAP_SCALE
    assert tuple(cfg.model.levels) == ('level1', 'level2')
    tax = osp.join('/data/x', TAXONOMY_FILE)
    assert cfg.model.taxonomy == tax
    for ds in _datasets(cfg):
        assert ds.end_month == 12 and ds.data_root == '/data/x'
        assert ds.taxonomy == tax
        assert tuple(ds.levels) == ('level1', 'level2')
        assert _load_tile_size(ds) == [48]
    for ev in (cfg.val_evaluator, cfg.test_evaluator):
        assert ev.taxonomy == tax and tuple(ev.levels) == ('level1', 'level2')


def test_child_config_taxonomy_reaches_the_evaluators(tmp_path):
    child = tmp_path / 'child.py'
    child.write_text(f"_base_ = ['{DEMO}']\ntaxonomy = '/tax/mine.csv'\n")
    cfg = resolve_experiment(Config.fromfile(str(child)))
    assert cfg.model.taxonomy == '/tax/mine.csv'
    assert cfg.val_evaluator.taxonomy == cfg.test_evaluator.taxonomy == \
        '/tax/mine.csv'
    assert all(ds.taxonomy == '/tax/mine.csv' for ds in _datasets(cfg))


def test_dropping_enmap_is_one_edit_and_adding_it_back_works():
    cfg = Config.fromfile(PAPER)
    cfg.modalities = ('s2', 'prior')
    s2p = resolve_experiment(cfg)
    assert s2p.model.enmap_encoder is None
    assert all(tuple(ds.modalities) == ('s2', 'prior')
               for ds in _datasets(s2p))
    # the encoder is removed from the resolved copy only
    assert cfg.model.enmap_encoder is not None


def test_data_lists_option_names_the_split_lists():
    cfg = Config.fromfile(PAPER)
    cfg.merge_from_dict({'data_lists': '/lists'})
    cfg = resolve_experiment(cfg)
    assert [ds.ann_file for ds in _datasets(cfg)] == [
        '/lists/train.txt', '/lists/val.txt', '/lists/test.txt']


@pytest.mark.parametrize('key,value,top', [
    ('model.num_frames', 6, 'end_month'),
    ('model.enmap_encoder.img_size', 21, 'tile_size'),
    ('val_evaluator.taxonomy', 'other.csv', 'taxonomy'),
    ('train_cfg.max_epochs', 3, 'max_epochs'),
    ('test_dataloader.dataset.ann_file', 'x/val.txt', 'data_lists'),
])
def test_contradicting_lower_level_values_are_refused(key, value, top):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'temporal_exp', 'crops_S2_H_P_Dec.py'))
    cfg.merge_from_dict({key: value})
    with pytest.raises(ExperimentConfigError,
                       match=f'set {top} instead'):
        resolve_experiment(cfg)


def test_enmap_modality_without_encoder_is_refused():
    cfg = Config.fromfile(PAPER)
    cfg.model.enmap_encoder = None
    with pytest.raises(ExperimentConfigError, match='enmap_encoder is None'):
        resolve_experiment(cfg)


@pytest.mark.parametrize('key,value,message', [
    ('end_month', 13, 'end_month=13'),
    ('tile_size', 50, 'multiple of 3'),
    ('modalities', ('enmap', ), 'is required'),
    ('levels', ('level5', ), 'levels='),
    ('max_epochs', 0, 'max_epochs=0'),
])
def test_invalid_choices_are_refused(key, value, message):
    cfg = Config.fromfile(PAPER)
    cfg[key] = value
    with pytest.raises(ExperimentConfigError, match=message):
        resolve_experiment(cfg)


def test_a_resolved_config_resolves_again_after_its_choices_change(tmp_path):
    cfg = resolve_experiment(Config.fromfile(DEMO))
    assert resolve_experiment(cfg).model == cfg.model  # idempotent
    dumped = str(tmp_path / 'resolved.py')
    cfg.dump(dumped)
    again = Config.fromfile(dumped)
    assert RESOLVED_KEY in again
    again.merge_from_dict(dict(data_root='/elsewhere', end_month=6,
                               tile_size=48, max_epochs=2))
    again = resolve_experiment(again)
    assert again.model.taxonomy == osp.join('/elsewhere', TAXONOMY_FILE)
    assert again.model.num_frames == 6 == again.test_dataloader.dataset[
        'end_month']
    assert again.model.enmap_encoder.img_size == 16
    assert again.train_cfg.max_epochs == 2


def _steps(ds, kind):
    return [(i, s) for i, s in enumerate(ds.pipeline) if s['type'] == kind]


def test_train_crop_size_reaches_train_pipeline_encoder_and_test_windows():
    cfg = Config.fromfile(DEMO)
    cfg.train_crop_size = 48
    out = resolve_experiment(cfg)
    train, val, test = _datasets(out)
    crops = _steps(train, 'H2CropRandomCrop')
    assert [(i, s['crop_size']) for i, s in crops] == [(1, 48)]
    assert _steps(train, 'LoadH2CropH5')[0][0] == 0  # cut after loading
    assert not _steps(val, 'H2CropRandomCrop')
    assert not _steps(test, 'H2CropRandomCrop')
    assert out.model.enmap_encoder.img_size == 48 // ENMAP_SCALE
    assert out.model.test_cfg.mode == 'slide'
    assert out.model.test_cfg.crop_size == 48
    assert out[RESOLVED_KEY]['train_crop_size'] == 48
    assert resolve_experiment(out).model == out.model  # idempotent
    # without EnMAP the crop still sets the train pipeline and test windows
    cfg.modalities = ('s2', )
    s2 = resolve_experiment(cfg)
    assert s2.model.enmap_encoder is None
    assert s2.model.test_cfg.crop_size == 48
    assert _steps(s2.train_dataloader.dataset, 'H2CropRandomCrop')
    # whole tiles (the default) change nothing
    plain = resolve_experiment(Config.fromfile(DEMO))
    assert plain.get('train_crop_size') is None
    assert not _steps(plain.train_dataloader.dataset, 'H2CropRandomCrop')
    assert plain.model.enmap_encoder.img_size == 96 // ENMAP_SCALE
    assert 'crop_size' not in (plain.model.get('test_cfg') or {})


def test_train_crop_size_resolves_again_when_changed_or_removed():
    cfg = Config.fromfile(DEMO)
    cfg.train_crop_size = 48
    out = resolve_experiment(cfg)
    out.train_crop_size = 72
    again = resolve_experiment(out)
    assert again.model.enmap_encoder.img_size == 24
    assert again.model.test_cfg.crop_size == 72
    assert [s['crop_size'] for _, s in _steps(
        again.train_dataloader.dataset, 'H2CropRandomCrop')] == [72]
    again.train_crop_size = None
    whole = resolve_experiment(again)
    assert whole.model.enmap_encoder.img_size == 32
    assert 'crop_size' not in whole.model.test_cfg
    assert whole.model.test_cfg.get('mode', 'whole') == 'whole'
    assert not _steps(whole.train_dataloader.dataset, 'H2CropRandomCrop')


@pytest.mark.parametrize('value,message', [
    (50, 'multiple of 3'), (30, 'from 32'), (99, 'tile_size=96'),
    (42, 'EnMAP side 14 is not a multiple of .*pool_size=4'),
    (True, 'train_crop_size=True')])
def test_invalid_train_crop_sizes_are_refused(value, message):
    cfg = Config.fromfile(DEMO)
    cfg.train_crop_size = value
    with pytest.raises(ExperimentConfigError, match=message):
        resolve_experiment(cfg)


def test_a_crop_step_added_by_hand_is_refused_naming_the_key():
    cfg = Config.fromfile(DEMO)
    cfg.train_dataloader.dataset.pipeline.insert(
        1, dict(type='H2CropRandomCrop', crop_size=48))
    with pytest.raises(ExperimentConfigError,
                       match='pipeline.1. is H2CropRandomCrop: set the '
                       'top-level train_crop_size'):
        resolve_experiment(cfg)
    cfg.train_crop_size = 72  # a contradicting step is refused as well
    with pytest.raises(ExperimentConfigError,
                       match='crop_size=48 contradicts train_crop_size=72'):
        resolve_experiment(cfg)
    cfg = Config.fromfile(DEMO)
    cfg.train_crop_size = 48
    cfg.model.test_cfg = dict(crop_size=96)
    with pytest.raises(ExperimentConfigError,
                       match='model.test_cfg.crop_size=96 contradicts'):
        resolve_experiment(cfg)
