"""The data preprocessor leaves callers' tensors alone and guards the
band statistics."""
import logging
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_BANDS,
    H5_DIR,
    H5_SUFFIX,
    PRIOR,
    S2,
    S2_BANDS,
)
from h2crop.datasets.band_stats import compute_band_stats
from h2crop.datasets.h5io import read_tile
from h2crop.models.band_stats_guard import BandStatsGuard
from h2crop.models.data_preprocessor import H2CropDataPreprocessor

from .._synthetic import make_tiny_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
B, T, H, L = 4, 2, 12, 4


def _stats(mean=0.0, std=1.0):
    return dict(mean={S2: [mean] * S2_BANDS, ENMAP: [mean] * ENMAP_BANDS},
                std={S2: [std] * S2_BANDS, ENMAP: [std] * ENMAP_BANDS})


def _batch(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    s2 = torch.randint(0, 1000, (B, T, S2_BANDS, H, H), generator=g)
    enmap = torch.randint(0, 1000, (B, ENMAP_BANDS, H // 3, H // 3),
                          generator=g)
    prior = torch.randint(0, 5, (B, L, H, H), generator=g)
    samples = []
    for b in range(B):
        sample = SegDataSample(metainfo=dict(sample_id=f't{b}'))
        sample.gt_sem_seg = PixelData(
            data=torch.full((L, H, H), b, dtype=torch.uint8))
        samples.append(sample)
    return dict(inputs={S2: s2.to(dtype), ENMAP: enmap.to(dtype),
                        PRIOR: prior},
                data_samples=samples)


@pytest.mark.parametrize('training', [False, True])
def test_caller_tensors_are_not_modified(training):
    pre = H2CropDataPreprocessor(**_stats(100.0, 7.0),
                                 cutmix=dict(prob=1.0, ratio_range=(0.5, 1)))
    data = _batch(torch.float32)
    before = {k: v.clone() for k, v in data['inputs'].items()}
    gts = [s.gt_sem_seg.data.clone() for s in data['data_samples']]
    torch.manual_seed(1)
    out = pre(data, training=training)
    for key, value in before.items():
        assert torch.equal(data['inputs'][key], value), key
    for sample, gt in zip(data['data_samples'], gts):
        assert torch.equal(sample.gt_sem_seg.data, gt)
    expected = (before[S2] - 100.0) / 7.0
    if not training:
        torch.testing.assert_close(out['inputs'][S2], expected)
    else:  # CutMix pasted into the output: labels moved with the pixels
        assert not torch.equal(out['inputs'][S2], expected)


def test_output_buffer_is_reused_only_when_free():
    pre = H2CropDataPreprocessor(**_stats())
    first = pre(_batch(torch.int16))['inputs'][S2]
    ptr = first.data_ptr()
    kept = first.clone()
    # `first` is still held: the next batch must not overwrite it
    second = pre(_batch(torch.int16))['inputs'][S2]
    assert second.data_ptr() != ptr
    assert torch.equal(first, kept)
    del first
    third_ptr = pre(_batch(torch.int16))['inputs'][S2].data_ptr()
    fourth = pre(_batch(torch.int16))['inputs'][S2]
    # once nobody holds it, the buffer of a step is reused by the next
    assert fourth.data_ptr() == third_ptr
    torch.testing.assert_close(fourth, _batch(torch.float32)['inputs'][S2])


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_of_logger():
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture(scope='module')
def synthetic_root(tmp_path_factory):
    # reflectance x 10^4 without offset, like many S2 products
    return make_tiny_dataset(tmp_path_factory.mktemp('guard'),
                             num_samples=6, size=24, seed=2)


def _tiles(root):
    ids = open(osp.join(root, DATA_LISTS_DIR, 'train.txt')).read().split()
    tiles = [read_tile(osp.join(root, H5_DIR, sid + H5_SUFFIX), (ENMAP, ))
             for sid in ids]
    return dict(inputs={S2: [torch.from_numpy(t[S2]) for t in tiles],
                        ENMAP: [torch.from_numpy(t[ENMAP]) for t in tiles]})


def test_guard_fires_with_published_stats_on_scaled_reflectance(
        synthetic_root, warnings_of_logger):
    base = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets',
                                    'h2crop.py'))
    pre = H2CropDataPreprocessor(mean=base.norm_mean, std=base.norm_std,
                                 stats_check_batches=2)
    data = _tiles(synthetic_root)
    pre(data)
    assert not warnings_of_logger  # judged after 2 batches only
    pre(data)
    assert len(warnings_of_logger) == 1
    message = warnings_of_logger[0]
    assert 's2 bands 0-' in message
    assert 'compute_band_stats.py' in message
    bad, _, std = pre.stats_guard.report[S2]
    assert 0 in bad and float(std[0]) < 0.2
    pre(data)  # one warning per run, not per batch
    assert len(warnings_of_logger) == 1


def test_guard_silent_with_the_data_own_stats(synthetic_root,
                                              warnings_of_logger):
    stats = compute_band_stats(synthetic_root, 'train')
    pre = H2CropDataPreprocessor(
        mean={k: stats[k]['mean'] for k in (S2, ENMAP)},
        std={k: stats[k]['std'] for k in (S2, ENMAP)},
        stats_check_batches=1)
    pre(_tiles(synthetic_root))
    assert pre.stats_guard.done
    assert pre.stats_guard.report[S2][0] == []
    assert pre.stats_guard.report[ENMAP][0] == []
    assert not warnings_of_logger


def test_guard_thresholds_and_disable():
    guard = BandStatsGuard(num_batches=1)
    x = torch.randn(2, 3, 50, 50, dtype=torch.float64)
    x[:, 1] *= 6.0  # std too large
    x[:, 2] += 4.0  # mean too far
    guard.update(ENMAP, x, 1)
    assert guard.judge() is False
    assert guard.report[ENMAP][0] == [1, 2]
    off = BandStatsGuard(num_batches=0)
    off.update(S2, x, 1)
    off.step()
    assert off.done and off.report == {}
    with pytest.raises(ValueError):
        BandStatsGuard(num_batches=-1)
