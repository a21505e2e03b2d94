"""Tests of h2crop.evaluation.HierarchicalSegMetric."""
import csv
import json
import math
from itertools import chain, zip_longest
from typing import Dict, List, Optional, Sequence

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample

from h2crop.constants import LEVELS
from h2crop.evaluation import (
    HIERARCHY_KEY,
    SUMMARY_METRICS,
    HierarchicalSegMetric,
    class_metrics,
)
from h2crop.evaluation import report as report_module
from h2crop.registry import METRICS
from h2crop.taxonomy import Taxonomy, load_taxonomy


# ---------------------------------------------------------------- helpers
def make_sample(pred: np.ndarray,
                gt: np.ndarray,
                prior: Optional[np.ndarray] = None,
                levels: Optional[Sequence[str]] = LEVELS,
                sample_id: str = 'tile') -> dict:
    """A ``SegDataSample.to_dict()``-like dict with (L, H, W) stacks."""
    sample = dict(sample_id=sample_id,
                  pred_sem_seg=dict(data=torch.as_tensor(pred).long()),
                  gt_sem_seg=dict(data=torch.as_tensor(gt).to(torch.uint8)))
    if levels is not None:
        sample['levels'] = tuple(levels)
    if prior is not None:
        sample['prior_sem_seg'] = dict(data=torch.as_tensor(prior).long())
    return sample


def evaluate(metric: HierarchicalSegMetric,
             samples: List[dict]) -> Dict[str, float]:
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def random_samples(num_samples: int, num_classes: Sequence[int], seed: int,
                   size: int = 24, with_prior: bool = False) -> List[dict]:
    """Random 4-level stacks: GT from the first 80 % of the classes, the
    prediction a copy of GT with 25 % of the pixels replaced by ids from the
    first 90 % (so some classes are predicted but absent, some neither)."""
    rng = np.random.default_rng(seed)
    samples = []
    for s in range(num_samples):
        gts, preds, priors = [], [], []
        for n in num_classes:
            gt = rng.integers(0, max(2, int(n * 0.8)), (size, size))
            pred = gt.copy()
            flip = rng.random((size, size)) < 0.25
            pred[flip] = rng.integers(0, max(2, int(n * 0.9)), flip.sum())
            prior = gt.copy()
            change = rng.random((size, size)) < 0.3
            prior[change] = rng.integers(0, n, change.sum())
            gts.append(gt)
            preds.append(pred)
            priors.append(prior)
        samples.append(
            make_sample(np.stack(preds), np.stack(gts),
                        np.stack(priors) if with_prior else None,
                        sample_id=f'tile{s}'))
    return samples


def mmseg_level_metrics(samples: List[dict], row: int,
                        num_classes: int) -> Dict[str, float]:
    """mmseg's IoUMetric on one level (row) of the samples."""
    metric = IoUMetric(iou_metrics=['mIoU', 'mFscore'])
    metric.dataset_meta = dict(classes=[str(i) for i in range(num_classes)])
    metric.process(None, [
        dict(pred_sem_seg=dict(data=s['pred_sem_seg']['data'][row:row + 1]),
             gt_sem_seg=dict(data=s['gt_sem_seg']['data'][row:row + 1]))
        for s in samples
    ])
    return metric.compute_metrics(metric.results)


def small_taxonomy() -> Taxonomy:
    """Synthetic 4-level tree: 2 -> 3 -> 3 -> 4 crop classes."""
    names = [['background'] + [f'L{k}c{i}' for i in range(1, n + 1)]
             for k, n in enumerate((2, 3, 3, 4), start=1)]
    parents = [None,
               np.array([0, 1, 1, 2]),  # level2 -> level1
               np.array([0, 1, 2, 3]),  # level3 -> level2
               np.array([0, 1, 1, 2, 3])]  # level4 -> level3
    return Taxonomy(names, parents, source='synthetic')


# ---------------------------------------------------------------- registry
def test_registered():
    metric = METRICS.build(dict(type='HierarchicalSegMetric',
                                levels=['level1']))
    assert isinstance(metric, HierarchicalSegMetric)
    assert metric.prefix == ''


# ---------------------------------------------------------------- vs mmseg
def test_agrees_with_mmseg_when_every_gt_class_is_hit():
    tax = load_taxonomy(None)
    samples = random_samples(4, tax.num_classes, seed=0)
    metric = HierarchicalSegMetric(prior_subsets=False, log_per_class=False)
    ours = evaluate(metric, samples)
    for row, level in enumerate(LEVELS):
        counts = sum(r['counts'][level][0] for r in metric.results)
        present = counts[2] > 0
        # precondition of the agreement: every GT class is hit at least once
        assert (counts[0][present] > 0).all()
        # and the data exercise predicted-but-absent and unused classes
        assert ((counts[1] > 0) & ~present).any()
        assert ((counts[1] == 0) & ~present).any()
        ref = mmseg_level_metrics(samples, row, tax.num_classes[row])
        assert set(ref) == set(SUMMARY_METRICS)
        for name in SUMMARY_METRICS:
            # mmseg divides float32 counts; 2-decimal rounding can differ
            # by one unit in the last place
            assert ours[f'{level}/{name}'] == pytest.approx(
                float(ref[name]), abs=0.0101), (level, name)
        # per class, before rounding, on the same counts
        per_class = class_metrics(*counts)
        ref_class = IoUMetric.total_area_to_metrics(
            *[torch.as_tensor(c, dtype=torch.float32) for c in
              (counts[0], counts[1] + counts[2] - counts[0], counts[1],
               counts[2])],
            metrics=['mIoU', 'mFscore'])
        for name in ('IoU', 'Acc', 'Fscore', 'Precision', 'Recall'):
            np.testing.assert_allclose(per_class[name], ref_class[name],
                                       rtol=1e-5, equal_nan=True)
    assert ours['mFscore'] == pytest.approx(
        np.mean([ours[f'{lv}/mFscore'] for lv in LEVELS]), abs=0.006)
    assert ours['mIoU'] == pytest.approx(
        np.mean([ours[f'{lv}/mIoU'] for lv in LEVELS]), abs=0.006)


def test_gt_class_never_predicted_counts_as_zero_fscore():
    # class 2 is in the GT (2 px) but never predicted
    gt = np.array([[[0, 0, 1, 1, 2, 2]]])
    pred = np.array([[[0, 0, 1, 1, 1, 0]]])
    samples = [make_sample(pred, gt, levels=('level1', ))]
    ours = evaluate(HierarchicalSegMetric(num_classes={'level1': 3}),
                    samples)
    ref = mmseg_level_metrics(samples, 0, 3)
    # per class F: 0.8, 0.8, 0 (ours) vs 0.8, 0.8, NaN-dropped (mmseg)
    assert ours['level1/mFscore'] == pytest.approx(53.33)
    assert float(ref['mFscore']) == pytest.approx(80.0)
    # precision of the never-predicted class is NaN (no epsilon): mean over
    # classes 0 and 1 only, same as mmseg
    assert ours['level1/mPrecision'] == pytest.approx(66.67)
    assert float(ref['mPrecision']) == pytest.approx(66.67)
    # everything else agrees
    for name in ('aAcc', 'mIoU', 'mAcc', 'mRecall'):
        assert ours[f'level1/{name}'] == pytest.approx(float(ref[name]),
                                                       abs=0.0101)


def test_gt_class_predicted_only_on_wrong_pixels_counts_as_zero_fscore():
    # class 2: 2 GT px, predicted once, never correctly (I = 0, P > 0)
    gt = np.array([[[0, 0, 1, 1, 2, 2, 0]]])
    pred = np.array([[[0, 0, 1, 1, 1, 1, 2]]])
    samples = [make_sample(pred, gt, levels=('level1', ))]
    ours = evaluate(HierarchicalSegMetric(num_classes={'level1': 3}),
                    samples)
    ref = mmseg_level_metrics(samples, 0, 3)
    # F: class0 2*2/(3+2) = 0.8, class1 2*2/(4+2) = 2/3, class2 0
    assert ours['level1/mFscore'] == pytest.approx(
        round(100 * (0.8 + 2 / 3 + 0) / 3, 2))
    # mmseg: precision 0 and recall 0 give 0/0 = NaN, class dropped
    assert float(ref['mFscore']) == pytest.approx(
        round(100 * (0.8 + 2 / 3) / 2, 2))
    assert ours['level1/mPrecision'] == pytest.approx(float(
        ref['mPrecision']))


def test_class_metrics_nan_rules():
    # classes: present+hit, present never predicted, absent but predicted,
    # absent and never predicted
    out = class_metrics(np.array([2, 0, 0, 0]), np.array([3, 0, 2, 0]),
                        np.array([4, 3, 0, 0]))
    np.testing.assert_allclose(out['IoU'], [2 / 5, 0, 0, np.nan])
    np.testing.assert_allclose(out['Acc'], [0.5, 0, np.nan, np.nan])
    np.testing.assert_allclose(out['Recall'], out['Acc'])
    np.testing.assert_allclose(out['Precision'], [2 / 3, np.nan, 0, np.nan])
    np.testing.assert_allclose(out['Fscore'], [4 / 7, 0, np.nan, np.nan])
    # beta = 2 follows (1 + b^2) P R / (b^2 P + R)
    p, r = 2 / 3, 0.5
    f2 = class_metrics(np.array([2]), np.array([3]), np.array([4]), beta=2)
    assert f2['Fscore'][0] == pytest.approx(5 * p * r / (4 * p + r))


# ---------------------------------------------------------------- by hand
TINY_GT = np.array([[[0, 0, 1, 1], [1, 2, 2, 2]]])
TINY_PRED = np.array([[[0, 1, 1, 1], [0, 2, 2, 0]]])


def test_hand_computed_counts_and_metrics():
    metric = HierarchicalSegMetric(num_classes={'level1': 3})
    out = evaluate(metric, [make_sample(TINY_PRED, TINY_GT,
                                        levels=('level1', ))])
    counts = metric.results[0]['counts']['level1']
    assert counts.shape == (1, 3, 3)
    # rows: intersection, predicted, ground truth
    np.testing.assert_array_equal(counts[0],
                                  [[1, 2, 2], [3, 3, 2], [2, 3, 3]])
    # IoU 1/4, 2/4, 2/3; Acc 1/2, 2/3, 2/3; P 1/3, 2/3, 1; F 2/5, 2/3, 4/5
    assert out['level1/aAcc'] == 62.5
    assert out['level1/mIoU'] == 47.22
    assert out['level1/mAcc'] == 61.11
    assert out['level1/mRecall'] == 61.11
    assert out['level1/mPrecision'] == 66.67
    assert out['level1/mFscore'] == 62.22
    assert out['mFscore'] == 62.22 and out['mIoU'] == 47.22
    assert HIERARCHY_KEY not in out
    assert not any('changed' in k for k in out)


def test_exclude_background():
    metric = HierarchicalSegMetric(num_classes={'level1': 3},
                                   exclude_background=True)
    out = evaluate(metric, [make_sample(TINY_PRED, TINY_GT,
                                        levels=('level1', ))])
    # classes 1 and 2 only; aAcc over crop GT pixels: (2 + 2) / (3 + 3)
    assert out['level1/aAcc'] == 66.67
    assert out['level1/mIoU'] == round(100 * (1 / 2 + 2 / 3) / 2, 2)
    assert out['level1/mAcc'] == round(100 * (2 / 3 + 2 / 3) / 2, 2)
    assert out['level1/mPrecision'] == round(100 * (2 / 3 + 1) / 2, 2)
    assert out['level1/mFscore'] == round(100 * (2 / 3 + 4 / 5) / 2, 2)


# ---------------------------------------------------------------- priors
def test_changed_and_unchanged_pixels():
    tax = load_taxonomy(None)
    samples = random_samples(3, tax.num_classes, seed=1, with_prior=True)
    metric = HierarchicalSegMetric(log_per_class=False)
    out = evaluate(metric, samples)
    for res in metric.results:
        assert all(c.shape[0] == 2 for c in res['counts'].values())
    # all pixels equal the metric without priors
    plain = evaluate(HierarchicalSegMetric(prior_subsets=False,
                                           log_per_class=False), samples)
    assert set(plain) < set(out)
    for key, value in plain.items():
        assert out[key] == value, key
    # each subset equals a plain single-level evaluation of its pixels
    for subset, keep_changed in (('changed', True), ('unchanged', False)):
        means = []
        for row, level in enumerate(LEVELS):
            picked = []
            for s in samples:
                gt = s['gt_sem_seg']['data'][row].long()
                pred = s['pred_sem_seg']['data'][row]
                mask = (s['prior_sem_seg']['data'][row] != gt) == keep_changed
                # the subset's pixels as a (1, 1, N) single-level stack
                picked.append(make_sample(pred[mask][None, None],
                                          gt[mask][None, None],
                                          levels=(level, )))
            ref = evaluate(HierarchicalSegMetric(levels=[level],
                                                 log_per_class=False),
                           picked)
            for name in SUMMARY_METRICS:
                assert out[f'{level}/{subset}/{name}'] == \
                    ref[f'{level}/{name}'], (subset, level, name)
            means.append(out[f'{level}/{subset}/mFscore'])
        assert out[f'{subset}/mFscore'] == pytest.approx(np.mean(means),
                                                         abs=0.006)
        assert f'{subset}/mIoU' in out


def test_mixed_prior_presence_skips_subsets():
    tax = load_taxonomy(None)
    samples = random_samples(2, tax.num_classes, seed=2, with_prior=True)
    del samples[1]['prior_sem_seg']
    out = evaluate(HierarchicalSegMetric(log_per_class=False), samples)
    assert 'level1/mFscore' in out
    assert not any('changed' in k for k in out)


# ---------------------------------------------------------------- hierarchy
def test_hierarchy_consistency_real_taxonomy(taxonomy_csv):
    tax = load_taxonomy(taxonomy_csv)
    rng = np.random.default_rng(3)
    fine = rng.integers(0, tax.num_classes[3], (10, 10))
    # a consistent stack: every level is the ancestor of the level-4 id
    stack = np.stack([tax.ancestor_map('level4', lv)[fine] for lv in LEVELS])
    assert tax.is_consistent(stack)
    pred = stack.copy()
    # break 25 pixels: a different level2 id disagrees with both neighbours
    broken = np.zeros((10, 10), dtype=bool)
    broken.flat[rng.choice(100, 25, replace=False)] = True
    pred[1][broken] = (pred[1][broken] + 1) % tax.num_classes[1]
    metric = HierarchicalSegMetric(taxonomy=taxonomy_csv, log_per_class=False)
    out = evaluate(metric, [make_sample(pred, stack),
                            make_sample(stack, stack, sample_id='tile1')])
    # 175 of 200 pixels form a path
    assert out[HIERARCHY_KEY] == 87.5
    assert out[HIERARCHY_KEY] == round(100 * np.mean(np.concatenate([
        tax.consistency_mask(pred).ravel(),
        tax.consistency_mask(stack).ravel()])), 2)


def test_hierarchy_consistency_synthetic_taxonomy():
    tax = small_taxonomy()
    # columns: (1,1,1,1) ok, (1,2,2,1) bad (l4 1 -> l3 1), (2,3,3,4) ok,
    # (0,0,0,0) ok, (1,1,1,2) ok, (2,1,1,1) bad (l2 1 -> l1 1)
    pred = np.array([[1, 1, 2, 0, 1, 2], [1, 2, 3, 0, 1, 1],
                     [1, 2, 3, 0, 1, 1], [1, 1, 4, 0, 2, 1]])[:, None]
    gt = np.zeros_like(pred)
    metric = HierarchicalSegMetric(taxonomy=tax, log_per_class=False)
    out = evaluate(metric, [make_sample(pred, gt)])
    assert metric.results[0]['consistency'].tolist() == [4, 6]
    assert out[HIERARCHY_KEY] == 66.67
    assert tax.consistency_mask(pred[:, 0]).tolist() == \
        [True, False, True, True, True, False]


def test_hierarchy_absent_without_hierarchy_or_all_levels():
    tax = load_taxonomy(None)
    samples = random_samples(1, tax.num_classes, seed=4)
    assert HIERARCHY_KEY not in evaluate(HierarchicalSegMetric(), samples)
    samples = random_samples(1, small_taxonomy().num_classes, seed=4)
    out = evaluate(HierarchicalSegMetric(taxonomy=small_taxonomy(),
                                         levels=LEVELS[1:]), samples)
    assert HIERARCHY_KEY not in out and 'level2/mFscore' in out


# ---------------------------------------------------------------- levels
def test_single_level_like_independent_heads():
    tax = load_taxonomy(None)
    samples = random_samples(2, tax.num_classes, seed=5)
    full = evaluate(HierarchicalSegMetric(log_per_class=False), samples)
    # metric restricted to level3 on 4-level samples
    sub = evaluate(HierarchicalSegMetric(levels=['level3'],
                                         log_per_class=False), samples)
    # samples that only carry level3 (independent-head configs)
    single = [make_sample(s['pred_sem_seg']['data'][2:3],
                          s['gt_sem_seg']['data'][2:3], levels=('level3', ))
              for s in samples]
    alone = evaluate(HierarchicalSegMetric(), single)
    expected = {f'level3/{n}': full[f'level3/{n}'] for n in SUMMARY_METRICS}
    expected.update(mFscore=full['level3/mFscore'],
                    mIoU=full['level3/mIoU'])
    assert sub == expected
    assert alone == expected
    # (H, W) stacks without levels metainfo, levels from the argument
    flat = [make_sample(s['pred_sem_seg']['data'][0],
                        s['gt_sem_seg']['data'][0], levels=None)
            for s in single]
    assert evaluate(HierarchicalSegMetric(levels=['level3']), flat) == \
        expected


def test_bad_input_raises_with_sample_id():
    bad = make_sample(TINY_PRED, TINY_GT + 5, levels=('level1', ),
                      sample_id='tile_x')
    with pytest.raises(ValueError, match='tile_x.*gt_sem_seg.*0..2'):
        HierarchicalSegMetric(num_classes={'level1': 3}).process(None, [bad])
    bad = make_sample(TINY_PRED[:, :1], TINY_GT, levels=('level1', ),
                      sample_id='tile_y')
    with pytest.raises(ValueError, match='tile_y.*differ'):
        HierarchicalSegMetric().process(None, [bad])
    bad = make_sample(TINY_PRED, TINY_GT, levels=None, sample_id='tile_z')
    with pytest.raises(ValueError, match='tile_z.*levels'):
        HierarchicalSegMetric().process(None, [bad])
    with pytest.raises(ValueError, match='level5'):
        HierarchicalSegMetric(levels=['level5'])


# ---------------------------------------------------------------- ranks
def test_two_ranks_equal_one():
    tax = load_taxonomy(None)
    samples = random_samples(5, tax.num_classes, seed=6, with_prior=True)
    single = HierarchicalSegMetric(log_per_class=False)
    expected = evaluate(single, samples)
    # DistributedSampler with 2 replicas: rank r takes r, r+2, ...; the
    # last index is padded with sample 0
    ranks = [HierarchicalSegMetric(log_per_class=False) for _ in range(2)]
    ranks[0].process(None, [samples[i] for i in (0, 2, 4)])
    ranks[1].process(None, [samples[i] for i in (1, 3, 0)])
    # mmengine's collect_results: interleave rank parts, cut to the size
    merged = [r for r in chain.from_iterable(
        zip_longest(*[m.results for m in ranks])) if r is not None]
    assert len(merged) == 6
    collector = HierarchicalSegMetric(log_per_class=False)
    assert collector.compute_metrics(merged[:5]) == expected
    assert collector.compute_metrics(merged) != expected


def test_evaluate_applies_prefix_and_clears():
    metric = HierarchicalSegMetric(num_classes={'level1': 3}, prefix='val')
    metric.process(None, [make_sample(TINY_PRED, TINY_GT,
                                      levels=('level1', ))])
    out = metric.evaluate(1)
    assert out['val/level1/mFscore'] == 62.22 and out['val/mFscore'] == 62.22
    assert metric.results == []


def test_real_data_sample_objects():
    sample = SegDataSample(metainfo=dict(levels=('level1', ),
                                         sample_id='obj'))
    sample.gt_sem_seg = PixelData(data=torch.as_tensor(TINY_GT,
                                                       dtype=torch.uint8))
    sample.pred_sem_seg = PixelData(data=torch.as_tensor(TINY_PRED))
    metric = HierarchicalSegMetric(num_classes={'level1': 3})
    metric.process(None, [sample.to_dict(), sample])
    out = metric.compute_metrics(metric.results)
    assert out['level1/mFscore'] == 62.22


# ---------------------------------------------------------------- files
def test_csv_json_written_without_overwriting(tmp_path, monkeypatch):
    monkeypatch.setattr(report_module.time, 'strftime',
                        lambda fmt: '20240101_000000')
    user_file = tmp_path / 'metrics_20240101_000000.json'
    user_file.write_text('mine')
    tax = small_taxonomy()
    samples = random_samples(2, tax.num_classes, seed=7, with_prior=True)
    metric = HierarchicalSegMetric(taxonomy=tax, output_dir=str(tmp_path))
    out = evaluate(metric, samples)
    assert user_file.read_text() == 'mine'
    stem = tmp_path / 'metrics_20240101_000000_1'
    summary = json.loads(stem.with_suffix('.json').read_text())
    assert summary['metrics'] == {
        k: (None if math.isnan(v) else v) for k, v in out.items()}
    assert summary['levels'] == list(LEVELS)
    with open(f'{stem}_per_class.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    # every class of every level for all / changed / unchanged pixels
    assert len(rows) == 3 * sum(tax.num_classes)
    row = next(r for r in rows if r['subset'] == 'all' and
               r['level'] == 'level4' and r['class_id'] == '4')
    assert row['class_name'] == 'L4c4'
    counts = sum(r['counts']['level4'].sum(0) for r in metric.results)
    assert int(row['gt_pixels']) == counts[2][4]
    assert int(row['intersect']) == counts[0][4]
    with open(f'{stem}_per_level.csv', newline='') as f:
        levels = list(csv.DictReader(f))
    assert len(levels) == 3 * len(LEVELS)
    assert float(levels[0]['mFscore']) == out['level1/mFscore']
    # a second evaluation picks yet another name
    evaluate(metric, samples)
    assert (tmp_path / 'metrics_20240101_000000_2.json').exists()
    assert len(list(tmp_path.iterdir())) == 1 + 2 * 3


def test_logs_taxonomy_names(taxonomy_csv, capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('h2crop_metric_test', log_level='INFO')
    tax = load_taxonomy(taxonomy_csv)
    samples = random_samples(1, tax.num_classes, seed=8)
    evaluate(HierarchicalSegMetric(taxonomy=taxonomy_csv), samples)
    logged = capsys.readouterr()
    text = logged.out + logged.err
    assert tax.level_names('level4')[5] in text
    assert 'per-level results, all pixels' in text
    assert 'hierarchy consistency of the predictions' in text
