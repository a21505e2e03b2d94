"""Tests of H2CropDataset and LoadH2CropH5 on tiny synthetic tiles."""
import json
import os
import os.path as osp
import shutil

import h5py
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    H5_DIR,
    H5_SUFFIX,
    LEVELS,
    NUM_CROP_CLASSES,
    PRIOR,
    S2,
)
from h2crop.datasets import H2CropDataError, H2CropDataset
from h2crop.engine.experiment import resolve_experiment
from h2crop.registry import DATASETS

from .._synthetic import make_tiny_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = [dict(type='LoadH2CropH5'), dict(type='H2CropRandomFlipRotate'),
         dict(type='PackH2CropInputs')]
TEST = [dict(type='LoadH2CropH5'), dict(type='PackH2CropInputs')]


@pytest.fixture(scope='module')
def tiny_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp('tiny'), num_samples=6,
                             size=48, spelling='mixed')


def _file(root, sid):
    with h5py.File(osp.join(root, H5_DIR, sid + H5_SUFFIX), 'r') as f:
        return {k: f[k][()] for k in f}


def _pick(d, *names):
    return next(d[n] for n in names if n in d)


def test_sample_structure_and_values(tiny_root):
    ds = DATASETS.build(dict(type='H2CropDataset', data_root=tiny_root,
                             ann_file='data_lists/train.txt', end_month=6,
                             levels=('level1', 'level4'), pipeline=TEST))
    assert ds.metainfo['levels'] == ('level1', 'level4')
    assert ds.metainfo['num_classes'] == (NUM_CROP_CLASSES[0] + 1,
                                          NUM_CROP_CLASSES[3] + 1)
    assert ds.metainfo['end_month'] == 6
    assert ds.metainfo['modalities'] == (S2, ENMAP, PRIOR)
    for i in range(len(ds)):
        item = ds[i]
        inputs, sample = item['inputs'], item['data_samples']
        raw = _file(tiny_root, sample.sample_id)
        assert inputs[S2].dtype == torch.int16
        assert inputs[S2].shape == (6, 10, 48, 48)
        assert np.array_equal(inputs[S2].numpy(),
                              _pick(raw, 'S2_data', 'S2')[:6])
        assert np.array_equal(inputs[ENMAP].numpy(),
                              _pick(raw, 'EnMAP_data', 'EnMAP'))
        assert np.array_equal(inputs[PRIOR].numpy(),
                              _pick(raw, 'priors', 'prior')[[0, 3]])
        assert np.array_equal(sample.gt_sem_seg.data.numpy(),
                              raw['label'][[0, 3]])
        assert sample.levels == ('level1', 'level4')
        assert sample.end_month == 6 and sample.ori_shape == (48, 48)
        assert sample.h5_path.endswith(sample.sample_id + H5_SUFFIX)


def test_modalities_subset_and_train_pipeline(tiny_root):
    ds = H2CropDataset(data_root=tiny_root, ann_file='data_lists/val.txt',
                       modalities=(S2, ), levels=('level2', ),
                       pipeline=TRAIN)
    item = ds[0]
    assert set(item['inputs']) == {S2}
    assert item['inputs'][S2].shape == (12, 10, 48, 48)
    assert item['data_samples'].gt_sem_seg.data.shape == (1, 48, 48)
    assert 'rot90_k' in item['data_samples'].metainfo


@pytest.mark.parametrize('kwargs', [
    dict(modalities=(ENMAP, )), dict(modalities=(S2, 'rgb')),
    dict(end_month=0), dict(end_month=13), dict(levels=()),
    dict(levels=('level1', 'level1')), dict(levels=('level5', ))])
def test_bad_options(tiny_root, kwargs):
    with pytest.raises(ValueError):
        H2CropDataset(data_root=tiny_root, ann_file='data_lists/train.txt',
                      pipeline=TEST, **kwargs)


def test_ann_file_resolution(tiny_root, tmp_path, monkeypatch):
    n = len(H2CropDataset(data_root=tiny_root,
                          ann_file='data_lists/test.txt'))
    absolute = osp.join(tiny_root, DATA_LISTS_DIR, 'test.txt')
    assert len(H2CropDataset(data_root=tiny_root, ann_file=absolute)) == n
    # relative to the working directory when not under data_root
    (tmp_path / 'lists').mkdir()
    shutil.copy(absolute, tmp_path / 'lists' / 'mine.txt')
    monkeypatch.chdir(tmp_path)
    ds = H2CropDataset(data_root=tiny_root, ann_file='lists/mine.txt')
    assert len(ds) == n and ds.ann_file == str(tmp_path / 'lists' /
                                               'mine.txt')
    with pytest.raises(H2CropDataError, match='nope.txt'):
        H2CropDataset(data_root=tiny_root, ann_file='nope.txt')
    lazy = H2CropDataset(data_root=tiny_root, ann_file=absolute,
                         lazy_init=True)
    assert not lazy._fully_initialized


def test_list_errors(tiny_root, tmp_path):
    ids = open(osp.join(tiny_root, DATA_LISTS_DIR, 'train.txt')).read()
    dup = tmp_path / 'dup.txt'
    dup.write_text(ids + ids.split()[0] + '\n')
    with pytest.raises(H2CropDataError, match='listed twice'):
        H2CropDataset(data_root=tiny_root, ann_file=str(dup))
    ghost = tmp_path / 'ghost.txt'
    ghost.write_text(ids + 'ghost_tile\n')
    with pytest.raises(H2CropDataError, match='ghost_tile'):
        H2CropDataset(data_root=tiny_root, ann_file=str(ghost))


def _corrupt_copy(root, tmp_path, sid, mutate):
    bad = str(tmp_path / 'bad')
    shutil.copytree(root, bad)
    mutate(osp.join(bad, H5_DIR, sid + H5_SUFFIX))
    lst = tmp_path / 'one.txt'
    lst.write_text(sid + '\n')
    return H2CropDataset(data_root=bad, ann_file=str(lst), pipeline=TRAIN)


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size // 2)


def _rewrite(key, fn):
    def mutate(path):
        with h5py.File(path, 'r+') as f:
            name = next(n for n in f if n.startswith(key))
            data = f[name][()]
            del f[name]
            f.create_dataset(name, data=fn(data))
    return mutate


@pytest.mark.parametrize('mutate,match', [
    (_truncate, 'truncated or corrupt'),
    (_rewrite('S2', lambda a: a.astype(np.float32)), 'dtype float32'),
    (_rewrite('EnMAP', lambda a: a[:, :8]), r'shape \(218, 8, 16\)'),
    (_rewrite('label', lambda a: np.where(a == a.max(), 250, a).astype(
        np.uint8)), 'ids up to 250'),
    (_rewrite('prior', lambda a: a[:3]), r'shape \(3, 48, 48\)'),
])
def test_corrupt_tile_raises_naming_file(tiny_root, tmp_path, mutate, match):
    sid = open(osp.join(tiny_root, DATA_LISTS_DIR,
                        'train.txt')).read().split()[0]
    ds = _corrupt_copy(tiny_root, tmp_path, sid, mutate)
    with pytest.raises(H2CropDataError, match=match) as info:
        ds[0]
    assert sid + H5_SUFFIX in str(info.value)


def test_missing_key_named(tiny_root, tmp_path):
    sid = open(osp.join(tiny_root, DATA_LISTS_DIR,
                        'train.txt')).read().split()[0]

    def drop_enmap(path):
        with h5py.File(path, 'r+') as f:
            del f[next(n for n in f if n.startswith('EnMAP'))]
    ds = _corrupt_copy(tiny_root, tmp_path, sid, drop_enmap)
    with pytest.raises(H2CropDataError, match='EnMAP_data|EnMAP'):
        ds[0]
    # not needed without EnMAP
    ok = H2CropDataset(data_root=ds.data_root, ann_file=ds.ann_file,
                       modalities=(S2, PRIOR), pipeline=TRAIN)
    assert ENMAP not in ok[0]['inputs']


def test_dataloader_workers_and_files_closed(tiny_root):
    ds = H2CropDataset(data_root=tiny_root, ann_file='data_lists/train.txt',
                       pipeline=TRAIN)
    loader = DataLoader(ds, batch_size=2, num_workers=2,
                        collate_fn=pseudo_collate)
    seen = []
    for batch in loader:
        assert batch['inputs'][S2][0].dtype == torch.int16
        seen += [s.sample_id for s in batch['data_samples']]
    assert sorted(seen) == sorted(d['sample_id'] for d in
                                  (ds.get_data_info(i)
                                   for i in range(len(ds))))
    for i in range(len(ds)):
        ds[i]
    assert h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE) == 0


def test_base_config_builds(tiny_root, shared_reference):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets',
                                   'h2crop.py'))
    stats = json.load(open(osp.join(shared_reference, 'band_stats.json')))
    assert cfg.norm_mean['s2'] == pytest.approx(stats['S2']['mean'])
    assert cfg.norm_std['s2'] == pytest.approx(stats['S2']['std'])
    assert cfg.norm_mean['enmap'] == pytest.approx(stats['EnMAP']['mean'])
    assert cfg.norm_std['enmap'] == pytest.approx(stats['EnMAP']['std'])
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.val_dataloader.batch_size == cfg.test_dataloader.batch_size \
        == 1
    assert tuple(cfg.levels) == LEVELS and cfg.end_month == 12
    cfg.data_root = tiny_root
    cfg.tile_size = 48
    cfg = resolve_experiment(cfg)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = DATASETS.build(cfg[name].dataset)
        item = ds[0]
        assert set(item['inputs']) == {S2, ENMAP, PRIOR}
