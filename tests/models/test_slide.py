"""Tests of sliding-window inference and its blending."""
import pytest
import torch

from h2crop.constants import ENMAP, PRIOR, S2
from h2crop.models.segmentors.slide import (
    edge_weight,
    slide_accumulate,
    slide_probs,
    whole_probs,
    window_starts,
)

from .tiny_dualstream import TILE, build_tiny, make_batch


def test_window_starts_cover_and_align_last():
    assert window_starts(96, 96, 48) == [0]
    assert window_starts(150, 96, 48) == [0, 48, 54]
    assert window_starts(192, 96, 48) == [0, 48, 96]
    with pytest.raises(ValueError, match='pad'):
        window_starts(50, 96, 48)


def test_edge_weight_positive_and_peaks_in_the_middle():
    w = edge_weight(6, 9)
    assert w.shape == (6, 9) and (w > 0).all()
    assert w[2:4, 4].min() > w[0, 0]
    assert torch.allclose(w, w.flip(0)) and torch.allclose(w, w.flip(1))


def _pixel_fn(inputs):
    """A 'model' whose output depends only on each pixel's own inputs."""
    s2 = inputs[S2]  # (N, T, C, h, w)
    a = s2.mean(dim=(1, 2))
    up = inputs[ENMAP].mean(1).repeat_interleave(3, -1).repeat_interleave(
        3, -2)
    logits = torch.stack([a, -a, up, inputs[PRIOR][:, 0].float()], dim=1)
    return {'level1': logits.softmax(1)}


def test_blending_identical_predictions_changes_nothing():
    gen = torch.Generator().manual_seed(0)
    inputs = {S2: torch.randn(2, 3, 10, 60, 78, generator=gen),
              ENMAP: torch.randn(2, 5, 20, 26, generator=gen),
              PRIOR: torch.randint(0, 3, (2, 1, 60, 78), generator=gen)}
    whole = _pixel_fn(inputs)['level1']
    for stride in ((9, 12), (24, 24), (3, 30)):
        blended = slide_probs(_pixel_fn, inputs, (24, 30), stride,
                              batch_size=4)['level1']
        assert torch.allclose(blended, whole, atol=1e-6), stride
        assert torch.allclose(blended.sum(1), torch.ones(2, 60, 78))


def test_blending_is_a_convex_combination():
    inputs = {S2: torch.zeros(1, 1, 1, 9, 15)}
    calls = []

    def fn(window):
        calls.append(window[S2].shape)
        value = float(len(calls))  # every window a different constant
        return {'l': torch.full((window[S2].shape[0], 1, 9, 9), value)}

    acc, wsum = slide_accumulate(fn, inputs, (9, 9), (9, 3))
    out = acc['l'] / wsum
    assert len(calls) == 3  # x = 0, 3, 6
    assert out.min() >= 1 - 1e-6 and out.max() <= 3 + 1e-6
    assert torch.allclose(out[..., :3], torch.ones(1, 1, 9, 3))
    assert torch.allclose(out[..., -3:], torch.full((1, 1, 9, 3), 3.))
    mid = out[0, 0, 4, 7]  # covered by all three windows
    assert 1 < mid < 3


def test_small_inputs_are_padded_and_cropped_back():
    inputs = {S2: torch.randn(1, 2, 10, 12, 21),
              ENMAP: torch.randn(1, 5, 4, 7),
              PRIOR: torch.zeros(1, 1, 12, 21, dtype=torch.long)}
    sizes = []

    def fn(window):
        sizes.append(tuple(window[S2].shape[-2:]))
        assert window[ENMAP].shape[-2:] == (sizes[-1][0] // 3,
                                            sizes[-1][1] // 3)
        return _pixel_fn(window)

    out = whole_probs(fn, inputs, (24, 24))['level1']
    assert sizes == [(24, 24)] and out.shape == (1, 4, 12, 21)
    torch.testing.assert_close(out, _pixel_fn(inputs)['level1'])


def test_segmentor_slide_equals_whole_on_one_tile_and_runs_larger():
    torch.manual_seed(0)
    model = build_tiny(test_cfg=dict(mode='slide')).eval()
    assert model.test_cfg['crop_size'] == (TILE, TILE)
    assert model.test_cfg['stride'] == (48, 48)
    inputs, _ = make_batch(model.modalities, model.levels, 6, batch=1)
    with torch.no_grad():
        slide = model(inputs, mode='predict')[0]
        model.set_test_cfg(dict(mode='whole'))
        whole = model(inputs, mode='predict')[0]
        assert torch.equal(slide.pred_sem_seg.data, whole.pred_sem_seg.data)
        assert slide.confidence.data.shape == (4, TILE, TILE)
        # a 150 x 123 px input (multiples of 3) slides over 4 x 3 windows
        big = {S2: torch.randn(1, 6, 10, 150, 123),
               ENMAP: torch.randn(1, 218, 50, 41),
               PRIOR: torch.zeros(1, 4, 150, 123, dtype=torch.long)}
        with pytest.raises(ValueError, match='slide'):
            model(big, mode='predict')
        model.set_test_cfg(dict(mode='slide', stride=(54, 27),
                                batch_size=3))
        out = model(big, mode='predict')[0]
    assert out.pred_sem_seg.data.shape == (4, 150, 123)


def test_test_cfg_is_validated():
    model = build_tiny()
    with pytest.raises(ValueError, match='unknown keys'):
        model.set_test_cfg(dict(mdoe='slide'))
    with pytest.raises(ValueError, match='multiple of 3'):
        model.set_test_cfg(dict(mode='slide', stride=50))
    with pytest.raises(ValueError, match='crop_size'):
        model.set_test_cfg(dict(crop_size=48))
    with pytest.raises(ValueError, match='decode'):
        model.set_test_cfg(dict(decode='viterbi'))
    with pytest.raises(ValueError, match='taxonomy'):
        model.set_test_cfg(dict(decode='consistent'))
