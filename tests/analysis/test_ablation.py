"""The ablation runner and the per-pixel baseline."""
import csv
import json
import os
import os.path as osp

import h5py
import numpy as np
import pytest
import torch

from h2crop.analysis.ablation import (
    BUDGET_EPOCHS,
    BUDGET_STEP_SECONDS,
    BUDGET_STEPS,
    CALIBRATION_STEPS,
    TRAIN_SECONDS,
    budget_epochs,
    parse_variant,
    run_ablation,
    run_budgets,
    synthetic_twins,
    write_budget_table,
)
from h2crop.analysis.pixel_baseline import PixelBaseline, pixel_features
from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_BANDS,
    ENMAP_SCALE,
    H5_DIR,
    LEVELS,
    NUM_LEVELS,
    S2,
    S2_BANDS,
)
from h2crop.datasets.h5io import LABEL, find_key
from h2crop.engine.checkpoint_experiment import record_of_meta
from h2crop.taxonomy import load_taxonomy

from .._synthetic import make_tiny_dataset
from ..engine.tiny_cfg import tiny_runner_cfg


def test_parse_variant():
    v = parse_variant('S2+H@6:indep')
    assert v.modalities == (S2, ENMAP) and v.end_month == 6
    assert v.independent
    assert parse_variant('S2+P').end_month is None
    for bad in ('S3', 'S2@13', 'S2:joint', 'H+S2'):
        with pytest.raises(ValueError, match='INPUTS'):
            parse_variant(bad)


def test_pixel_features_layout():
    rng = np.random.default_rng(0)
    size, months = 6, 3
    tile = {S2: rng.integers(0, 3000, (months, S2_BANDS, size, size),
                             dtype=np.int16),
            ENMAP: rng.integers(0, 3000, (ENMAP_BANDS, size // ENMAP_SCALE,
                                          size // ENMAP_SCALE),
                                dtype=np.int16)}
    mean = {S2: [100.0] * S2_BANDS, ENMAP: [50.0] * ENMAP_BANDS}
    std = {S2: [10.0] * S2_BANDS, ENMAP: [5.0] * ENMAP_BANDS}
    x = pixel_features(tile, (S2, ENMAP), mean, std, [])
    assert x.shape == (size * size, months * S2_BANDS + ENMAP_BANDS)
    # pixel (row 4, col 2): S2 of month 1, band 3, then its 30 m cell
    pix = 4 * size + 2
    assert x[pix, 1 * S2_BANDS + 3] == pytest.approx(
        (tile[S2][1, 3, 4, 2] - 100.0) / 10.0)
    cell = tile[ENMAP][:, 4 // ENMAP_SCALE, 2 // ENMAP_SCALE]
    assert torch.allclose(x[pix, months * S2_BANDS:],
                          torch.from_numpy((cell - 50.0) / 5.0).float())


def test_pixel_baseline_learns_separable_case(tmp_path):
    """Level-4 ids coded in S2 bands 0-6: the MLP must recover them."""
    root = make_tiny_dataset(tmp_path, num_samples=6, size=24, seed=5)
    rng = np.random.default_rng(1)
    for name in sorted(os.listdir(osp.join(root, H5_DIR))):
        with h5py.File(osp.join(root, H5_DIR, name), 'r+') as h5:
            label = h5[find_key(h5, LABEL)][...]
            s2 = h5[find_key(h5, S2)]
            data = s2[...]
            fine = label[NUM_LEVELS - 1].astype(np.int16)
            for bit in range(7):  # binary code of ids < 128 in bands 0..6
                data[:, bit] = ((fine >> bit) & 1) * 1000 + rng.integers(
                    0, 50, data[:, bit].shape)
            s2[...] = data
    # score on the train tiles: 6 tiles do not share all their classes
    lists = osp.join(root, DATA_LISTS_DIR)
    with open(osp.join(lists, 'train.txt'), encoding='utf-8') as f:
        train_ids = f.read()
    with open(osp.join(lists, 'test.txt'), 'w', encoding='utf-8') as f:
        f.write(train_ids)
    tax = load_taxonomy(osp.join(root, 'cascade_labels.csv'))
    mean = {S2: [500.0] * S2_BANDS}
    std = {S2: [500.0] * S2_BANDS}
    lists = {s: osp.join(DATA_LISTS_DIR, f'{s}.txt')
             for s in ('train', 'test')}
    common = dict(data_root=root, ann_files=lists, modalities=(S2, ),
                  end_month=2, levels=LEVELS, num_classes=tax.num_classes,
                  mean=mean, std=std, pixels_per_tile=576,
                  hidden_dims=(64, ), batch_size=256)
    learnt = PixelBaseline(steps=300, lr=1e-2, **common).fit().evaluate()
    untrained = PixelBaseline(steps=1, lr=1e-9, **common).fit().evaluate()
    for lv in LEVELS:
        assert learnt[f'{lv}/aAcc'] > 95.0, (lv, learnt[f'{lv}/aAcc'])
        assert learnt[f'{lv}/mFscore'] > untrained[f'{lv}/mFscore'] + 20
    assert 'level4/changed/mFscore' in learnt


def test_run_ablation_smoke(tmp_path):
    """Two variants, one epoch each: every table and the plot exist."""
    root = make_tiny_dataset(tmp_path / 'data', num_samples=3, size=48,
                             seed=2)
    cfg = tiny_runner_cfg(root, str(tmp_path / 'unused'), resolve=False)
    cfg.tile_size = 48
    for loader in ('train_dataloader', 'val_dataloader',
                   'test_dataloader'):
        cfg[loader].batch_size = 1
    cfg_path = str(tmp_path / 'tiny.py')
    cfg.dump(cfg_path)
    out = str(tmp_path / 'ablation')
    paths = run_ablation(cfg_path, ['S2', 'S2+H'], root, out, epochs=1,
                         baseline_steps=5)
    for key in ('per_level_csv', 'per_level_md', 'enmap_gain_csv',
                'changed_unchanged_csv', 'plot'):
        assert osp.isfile(paths[key]), key
    with open(paths['per_level_csv'], encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    names = [r['variant'] for r in rows]
    assert names == ['S2', 'S2+H', 'MLP S2', 'MLP S2+H'], names
    for row in rows:
        values = [float(row[f'{lv} mFscore']) for lv in LEVELS]
        assert all(0.0 <= v <= 100.0 for v in values)
        assert float(row['train min']) >= 0  # models and baselines timed
    with open(osp.join(out, 'results.json'), encoding='utf-8') as f:
        results = json.load(f)
    for group in ('variants', 'baselines'):
        assert all(m['train_seconds'] > 0 for m in results[group].values())
    # the synthetic data's EnMAP-only classes get their own table, with
    # the per-class F-scores of the test metric's CSV / the baseline
    assert synthetic_twins(root)
    with open(paths['enmap_only_classes_csv'], encoding='utf-8') as f:
        twin_rows = list(csv.DictReader(f))
    assert [r['variant'] for r in twin_rows] == names
    assert any(r['EnMAP-only classes F'] for r in twin_rows)
    with open(paths['enmap_gain_csv'], encoding='utf-8') as f:
        gains = list(csv.DictReader(f))
    assert [g['comparison'] for g in gains] == ['S2+H vs S2',
                                                'MLP S2+H vs MLP S2']
    with pytest.raises(FileExistsError, match='--overwrite'):
        run_ablation(cfg_path, ['S2'], root, out, epochs=1)


def test_budget_epochs_fill_the_budget():
    assert budget_epochs(10, 60.) == 10
    assert budget_epochs(10, 45.) == 13  # 13.3 rounded
    assert budget_epochs(0.1, 60.) == 1  # at least one epoch


def test_run_budgets_trains_on_crops_at_equal_wall_time(tmp_path):
    """Calibrated epochs per budget, crops trained, windows tested."""
    root = make_tiny_dataset(tmp_path / 'data', num_samples=3, size=72,
                             seed=2)
    cfg = tiny_runner_cfg(root, str(tmp_path / 'unused'), resolve=False)
    cfg.tile_size = 72
    for loader in ('train_dataloader', 'val_dataloader',
                   'test_dataloader'):
        cfg[loader].batch_size = 1
    cfg_path = str(tmp_path / 'tiny.py')
    cfg.dump(cfg_path)
    out = str(tmp_path / 'budget')
    budgets = (0.01,)
    paths = run_budgets(cfg_path, ['S2+H'], root, out, budgets,
                        extra=['train_crop_size=48'])
    with open(osp.join(out, 'budget_results.json'), encoding='utf-8') as f:
        rows = json.load(f)
    assert [(r['name'], r['budget']) for r in rows] == [
        ('S2+H', 0.01), ('MLP S2+H', 0.01)]
    cal = rows[0]['calibration']
    # 3 tiles, 1 train tile at batch 1: one iteration per epoch, timed
    # within the calibration run's wall time
    assert cal['iters_per_epoch'] == 1
    assert 0 < cal['epoch_seconds'] < cal['wall_seconds']
    assert rows[0]['metrics'][BUDGET_EPOCHS] == budget_epochs(
        0.01, cal['epoch_seconds'])
    for r in rows[1:]:
        m = r['metrics']
        # the baseline's steps fill the budget at its measured step time
        # (at least the calibration's own steps)
        assert m[BUDGET_STEP_SECONDS] > 0
        assert m[BUDGET_STEPS] == max(
            CALIBRATION_STEPS, int(r['budget'] * 60. / m[BUDGET_STEP_SECONDS]))
    # the model was built for 48-px windows and tested on them
    run = osp.join(out, 'S2_H', '0.01min')
    dumped = [f for f in os.listdir(run) if f.endswith('.py')]
    from mmengine.config import Config
    used = Config.fromfile(osp.join(run, dumped[0]))
    assert used.model.enmap_encoder.img_size == 16
    assert used.model.test_cfg.mode == 'slide'
    # ... and its checkpoint records that it was trained on 48-px crops
    epochs = rows[0]['metrics'][BUDGET_EPOCHS]
    ckpt = torch.load(osp.join(run, f'epoch_{epochs}.pth'),
                      map_location='cpu', weights_only=False)
    assert record_of_meta(ckpt['meta'])['train_crop_size'] == 48
    for r in rows:
        assert 0 <= r['metrics']['level1/mFscore'] <= 100
    with open(paths['budget_csv'], encoding='utf-8') as f:
        table = list(csv.DictReader(f))
    assert [t['variant'] for t in table] == [r['name'] for r in rows]
    assert osp.isfile(paths['budget_plot'])
    with pytest.raises(FileExistsError, match='--overwrite'):
        run_budgets(cfg_path, ['S2'], root, out, budgets)
    with pytest.raises(ValueError, match='positive minutes'):
        run_budgets(cfg_path, ['S2'], root, str(tmp_path / 'b2'), [0])


def test_budget_table_means_and_plot(tmp_path):
    """One row per variant and budget; the mean over the levels."""
    def metrics(scores, seconds, **length):
        m = {f'level{i + 1}/mFscore': v for i, v in enumerate(scores)}
        return dict(m, **{TRAIN_SECONDS: seconds}, **length)
    rows = [
        dict(name='S2', budget=5.0,
             metrics=metrics([90., 50., 40., 20.], 290., budget_epochs=7)),
        dict(name='S2', budget=10.0,
             metrics=metrics([95., 60., 50., 35.], 612., budget_epochs=14)),
        dict(name='MLP S2', budget=5.0,
             metrics=metrics([99., 80., 70., 60.], 300., budget_steps=9000)),
    ]
    paths = write_budget_table(rows, str(tmp_path))
    with open(paths['budget_csv'], encoding='utf-8') as f:
        table = list(csv.DictReader(f))
    assert [(t['variant'], t['budget min'], t['epochs / steps'])
            for t in table] == [('S2', '5', '7'), ('S2', '10', '14'),
                                ('MLP S2', '5', '9000')]
    assert [float(t['mean']) for t in table] == pytest.approx(
        [50., 60., 77.25], abs=0.01)
    assert [float(t['train min']) for t in table] == pytest.approx(
        [4.8, 10.2, 5.0], abs=0.05)
    assert osp.getsize(paths['budget_plot']) > 0


@pytest.mark.parametrize('mode', [['--budget-minutes', '5'],
                                  ['--any-window-curve']])
def test_cli_refuses_baseline_steps_where_they_change_nothing(mode):
    import importlib.util
    path = osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'analysis_tools',
        'run_ablation.py')
    spec = importlib.util.spec_from_file_location('run_ablation_cli', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit, match='--baseline-steps changes nothing'):
        tool.main(['cfg.py', '--data-root', 'nowhere', '--variants', 'S2',
                   '--baseline-steps', '100'] + mode)
