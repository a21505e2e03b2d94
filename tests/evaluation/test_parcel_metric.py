"""ParcelMetric on a hand-built case: majority votes merged across tiles."""
import argparse
import glob
import json
import os.path as osp

import h5py
import numpy as np
import pytest
import torch
from mmengine.config import Config

from h2crop.datasets.synthetic import synthetic_taxonomy
from h2crop.engine.runner_builder import add_parcel_metric, prepare_cfg
from h2crop.evaluation import ParcelMetric
from h2crop.evaluation.metrics.parcel_metric import majority

TAX = synthetic_taxonomy(0, counts=(3, 3, 3, 3))  # ids equal at all levels


def _sample(pid, gt, pred, sid):
    """One-level sample dict as the evaluator passes it."""
    return dict(sample_id=sid, levels=('level1', ),
                gt_parcel_id=dict(data=torch.tensor(pid)[None]),
                gt_sem_seg=dict(data=torch.tensor(gt)[None]),
                pred_sem_seg=dict(data=torch.tensor(pred)[None]))


# Parcel 1 (class 1) is cut by the tile edge: 3 pixels in tile A predicted
# 1, 2 pixels in tile B predicted 2 -> merged majority 1 (tile B alone: 2).
# Parcel 2 (class 2) predicted 2; parcel 3 (class 1) predicted 2 on 2 of
# 3 pixels; parcel 4 has background reference (unmapped code): skipped.
TILE_A = _sample(pid=[[1, 1, 1, 0], [3, 3, 3, 0]],
                 gt=[[1, 1, 1, 0], [1, 1, 1, 0]],
                 pred=[[1, 1, 1, 2], [2, 1, 2, 0]], sid='a')
TILE_B = _sample(pid=[[1, 1, 2, 2], [4, 4, 2, 0]],
                 gt=[[1, 1, 2, 2], [0, 0, 2, 0]],
                 pred=[[2, 2, 2, 3], [1, 1, 2, 3]], sid='b')


def test_hand_built_parcel_scores(tmp_path):
    metric = ParcelMetric(taxonomy=TAX, output_dir=str(tmp_path))
    metric.process({}, [TILE_A, TILE_B])
    res = metric.compute_metrics(metric.results)
    # parcels 1, 2, 3: reference 1, 2, 1; prediction 1, 2, 2
    assert res['level1/accuracy'] == pytest.approx(66.67)
    # class 1: P 1/1, R 1/2, F 2/3; class 2: P 1/2, R 1, F 2/3
    assert res['level1/mFscore'] == pytest.approx(66.67)
    assert res['level1/mPrecision'] == pytest.approx(75.0)
    assert res['level1/mRecall'] == pytest.approx(75.0)
    assert res['num_parcels'] == 3 and res['num_unlabelled_parcels'] == 1
    assert res['mFscore'] == res['level1/mFscore']
    files = sorted(glob.glob(osp.join(str(tmp_path), 'parcel_metrics_*')))
    assert len(files) == 4
    with open([f for f in files if f.endswith('.json')][0]) as f:
        assert json.load(f)['metrics']['level1/parcels'] == 3
    per_parcel = [f for f in files if f.endswith('_per_parcel.csv')][0]
    with open(per_parcel) as f:
        lines = f.read().split()
    assert lines[1].startswith('1,1,1,0.6')  # parcel 1: 3 of 5 votes
    # a second evaluation writes new files, never over the first ones
    metric.compute_metrics(metric.results)
    assert len(glob.glob(osp.join(str(tmp_path), 'parcel_metrics_*'))) == 8


def test_tiles_alone_would_differ_and_ranks_merge():
    only_b = ParcelMetric(taxonomy=TAX)
    only_b.process({}, [TILE_B])
    ids, pred, _ = majority(only_b.results[0]['votes']['level1'][0], 4)
    assert pred[list(ids).index(1)] == 2  # parcel 1 seen from tile B only
    # two "ranks" each with one tile: their collected entries give the
    # one-process result
    rank0, rank1 = ParcelMetric(taxonomy=TAX), ParcelMetric(taxonomy=TAX)
    rank0.process({}, [TILE_A])
    rank1.process({}, [TILE_B])
    merged = rank0.compute_metrics(rank0.results + rank1.results)
    single = ParcelMetric(taxonomy=TAX)
    single.process({}, [TILE_B, TILE_A])
    assert merged == single.compute_metrics(single.results)


def test_without_parcel_ids_nothing_is_reported():
    metric = ParcelMetric(taxonomy=TAX)
    sample = dict(TILE_A)
    del sample['gt_parcel_id']
    metric.process({}, [sample])
    assert metric.compute_metrics(metric.results) == {}


def _data_root(tmp_path, with_parcel_ids):
    root = tmp_path / 'data'
    (root / 'h5_data').mkdir(parents=True)
    (root / 'data_lists').mkdir()
    (root / 'data_lists' / 'test.txt').write_text('t0\n')
    with h5py.File(root / 'h5_data' / 't0.h5', 'w') as f:
        f['label'] = np.zeros((4, 3, 3), np.uint8)
        if with_parcel_ids:
            f['parcel_id'] = np.zeros((3, 3), np.uint32)
    return str(root)


def test_test_mode_adds_the_metric_for_tiles_with_parcel_ids(tmp_path):
    cfg = Config(dict(
        test_dataloader=dict(dataset=dict(
            data_root=_data_root(tmp_path, True),
            ann_file='data_lists/test.txt')),
        test_evaluator=dict(type='HierarchicalSegMetric', taxonomy='t.csv')))
    evs = add_parcel_metric(cfg, [cfg.test_evaluator])
    assert [e['type'] for e in evs] == ['HierarchicalSegMetric',
                                        'ParcelMetric']
    assert evs[1]['taxonomy'] == 't.csv'
    cfg.test_dataloader.dataset.data_root = _data_root(tmp_path / 'b', False)
    assert len(add_parcel_metric(cfg, [cfg.test_evaluator])) == 1


@pytest.mark.parametrize('enabled', [True, False])
def test_prepare_cfg_writes_parcel_metrics_to_the_work_dir(tmp_path,
                                                           enabled):
    root = _data_root(tmp_path, True)
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        f'data_root = {root!r}\n'
        "test_dataloader = dict(dataset=dict(type='H2CropDataset'))\n"
        "test_evaluator = dict(type='HierarchicalSegMetric')\n"
        f'parcel_metric = {enabled}\n')
    work = str(tmp_path / 'work')
    ckpt = str(tmp_path / 'c.pth')
    torch.save({'state_dict': {}}, ckpt)  # no experiment record: unchecked
    args = argparse.Namespace(config=str(cfg_file), checkpoint=ckpt,
                              work_dir=work, launcher='none',
                              cfg_options=None, out=None, show_dir=None)
    cfg = prepare_cfg(args, 'test')
    evs = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else \
        [cfg.test_evaluator]
    want = ['HierarchicalSegMetric'] + ['ParcelMetric'] * enabled
    assert [e['type'] for e in evs] == want
    assert all(e['output_dir'] == work for e in evs)
