"""The accuracy-vs-end-month curve of one any-window checkpoint."""
import csv
import json
import os.path as osp

import pytest

from h2crop.analysis.any_window import any_window_curve
from h2crop.constants import NUM_MONTHS

from .._synthetic import make_tiny_dataset
from ..engine.tiny_cfg import tiny_runner_cfg


def _tiny_config(tmp_path, root, any_window=True):
    cfg = tiny_runner_cfg(root, str(tmp_path / 'unused'),
                          num_frames=NUM_MONTHS, resolve=False)
    cfg.tile_size = 48
    if any_window:
        cfg.model.any_window = dict(end_months=(4, 8, 12), enmap_drop=0.3,
                                    prior_drop=0.3)
    path = str(tmp_path / ('any.py' if any_window else 'plain.py'))
    cfg.dump(path)
    return path


def test_curve_smoke(tmp_path):
    """Train one epoch, test at 2 months x 2 subsets, write the tables."""
    root = make_tiny_dataset(tmp_path / 'data', num_samples=3, size=48,
                             seed=4)
    config = _tiny_config(tmp_path, root)
    out = str(tmp_path / 'curve')
    paths = any_window_curve(config, out, data_root=root, months=[2, 12],
                             inputs=['S2', 'S2+H+P'], epochs=1)
    for key in ('curve_mFscore_csv', 'curve_mFscore_md', 'curve_level4_csv',
                'plot', 'results'):
        assert osp.isfile(paths[key]), key
    with open(paths['curve_mFscore_csv'], encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    assert [r['inputs'] for r in rows] == ['S2', 'S2+H+P']
    assert list(rows[0]) == ['inputs', 'M2', 'M12']
    with open(paths['results'], encoding='utf-8') as f:
        results = json.load(f)
    checkpoint = results['checkpoint']
    assert osp.dirname(checkpoint) == osp.join(out, 'train')
    for row in rows:
        metrics = results['metrics'][row['inputs']]
        for month in (2, 12):
            value = float(row[f'M{month}'])
            assert 0.0 <= value <= 100.0
            assert value == pytest.approx(metrics[str(month)]['mFscore'],
                                          abs=0.006)
    # the prior subset's tests saw the prior (changed / unchanged metrics)
    assert 'changed/mFscore' in results['metrics']['S2+H+P']['12']
    assert 'changed/mFscore' not in results['metrics']['S2']['12']
    with pytest.raises(FileExistsError, match='--overwrite'):
        any_window_curve(config, out, checkpoint=checkpoint,
                         data_root=root, months=[3], inputs=['S2'])
    # a given checkpoint is tested without training
    again = any_window_curve(config, str(tmp_path / 'again'),
                             checkpoint=checkpoint, data_root=root,
                             months=[5], inputs=['S2+P'])
    assert not osp.exists(str(tmp_path / 'again' / 'train'))
    with open(again['curve_level4_csv'], encoding='utf-8') as f:
        assert [r['inputs'] for r in csv.DictReader(f)] == ['S2+P']


def test_curve_refuses_bad_requests(tmp_path):
    root = make_tiny_dataset(tmp_path / 'data', num_samples=3, size=48,
                             seed=4)
    plain = _tiny_config(tmp_path, root, any_window=False)
    with pytest.raises(ValueError, match='model.any_window is not set'):
        any_window_curve(plain, str(tmp_path / 'x'), data_root=root)
    config = _tiny_config(tmp_path, root)
    for months, inputs, message in (([13], ['S2'], r'1\.\.12'),
                                    ([2], ['S2+X'], r'S2\+X'),
                                    ([2, 2], ['S2'], 'twice')):
        with pytest.raises(ValueError, match=message):
            any_window_curve(config, str(tmp_path / 'x'), data_root=root,
                             months=months, inputs=inputs)
