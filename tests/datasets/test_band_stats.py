"""Band statistics of a split (library and CLI) against numpy."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_BANDS,
    H5_DIR,
    H5_SUFFIX,
    S2,
    S2_BANDS,
)
from h2crop.datasets.band_stats import RunningBandStats, compute_band_stats
from h2crop.datasets.h5io import H2CropDataError, read_tile
from h2crop.engine.experiment import resolve_experiment

from .._synthetic import make_tiny_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'compute_band_stats.py')


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp('bs'), num_samples=8,
                             size=24, seed=5)


def _numpy_stats(root: str, split: str):
    ids = open(osp.join(root, DATA_LISTS_DIR, f'{split}.txt')).read().split()
    tiles = [read_tile(osp.join(root, H5_DIR, sid + H5_SUFFIX), (ENMAP, ))
             for sid in ids]
    # (N, 12, 10, H, W) -> bands first, everything else pooled
    s2 = np.stack([t[S2] for t in tiles]).astype(np.float64)
    s2 = s2.transpose(2, 0, 1, 3, 4).reshape(S2_BANDS, -1)
    enmap = np.stack([t[ENMAP] for t in tiles]).astype(np.float64)
    enmap = enmap.transpose(1, 0, 2, 3).reshape(ENMAP_BANDS, -1)
    return {S2: (s2.mean(1), s2.std(1)), ENMAP: (enmap.mean(1), enmap.std(1))}


@pytest.mark.parametrize('workers', [0, 2])
def test_matches_numpy(root, workers):
    stats = compute_band_stats(root, 'train', workers=workers, chunk_size=2)
    expected = _numpy_stats(root, 'train')
    for key, (mean, std) in expected.items():
        np.testing.assert_allclose(stats[key]['mean'], mean, rtol=1e-12)
        np.testing.assert_allclose(stats[key]['std'], std, rtol=1e-10)
    assert stats['num_tiles'] == len(open(osp.join(
        root, DATA_LISTS_DIR, 'train.txt')).read().split())


def test_chan_merge_is_exact_for_large_offsets():
    rng = np.random.default_rng(0)
    data = 3e4 + rng.normal(0, 0.5, size=(3, 1000))
    whole = RunningBandStats(3)
    whole.add(data, 0)
    parts = RunningBandStats(3)
    for chunk in np.array_split(data, 7, axis=1):
        part = RunningBandStats(3)
        part.add(chunk, 0)
        parts.merge(part)
    np.testing.assert_allclose(parts.mean, data.mean(1), rtol=1e-14)
    np.testing.assert_allclose(parts.std, data.std(1), rtol=1e-9)
    np.testing.assert_allclose(whole.std, data.std(1), rtol=1e-9)


def test_empty_split_and_unknown_modality_are_refused(root, tmp_path):
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n')
    with pytest.raises(H2CropDataError, match='empty'):
        compute_band_stats(root, ann_file=str(empty))
    with pytest.raises(ValueError, match='modalities'):
        compute_band_stats(root, modalities=('prior', ))


def _load_tool():
    spec = importlib.util.spec_from_file_location('compute_band_stats', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_json_and_an_includable_config(root, tmp_path, capsys):
    out = str(tmp_path / 'stats')
    base = osp.join(REPO, 'configs', 'hyper_benefits', 'crops_S2_H_P_jun.py')
    tool = _load_tool()
    assert tool.main([root, '--split', 'val', '--out-dir', out,
                      '--config', base]) == 0
    assert 'tiles of' in capsys.readouterr().out
    with open(osp.join(out, 'band_stats.json')) as f:
        saved = json.load(f)
    expected = _numpy_stats(root, 'val')
    np.testing.assert_allclose(saved[S2]['mean'], expected[S2][0],
                               rtol=1e-12)
    cfg = resolve_experiment(Config.fromfile(osp.join(out, 'band_stats.py')))
    # the choices reach the model's preprocessor when the run is built
    np.testing.assert_allclose(cfg.model.data_preprocessor.std[ENMAP],
                               expected[ENMAP][1], rtol=1e-10)
    np.testing.assert_allclose(cfg.norm_mean[S2], expected[S2][0],
                               rtol=1e-12)
    # the rest of the inherited config is intact
    assert cfg.model.data_preprocessor.type == 'H2CropDataPreprocessor'
    assert cfg.model.s2_encoder.type == 'S2TemporalSwin'
    # nothing is overwritten without --overwrite
    assert tool.main([root, '--out-dir', out]) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert tool.main([root, '--out-dir', out, '--overwrite',
                      '--modalities', 's2']) == 0
