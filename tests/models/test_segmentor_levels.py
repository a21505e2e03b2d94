"""The model checks that labels and priors hold its levels, in order."""
import pytest
import torch

from h2crop.constants import ENMAP, LEVELS, PRIOR, S2

from .tiny_dualstream import build_tiny, make_batch

MODS = (S2, ENMAP, PRIOR)


def test_levels_in_another_order_fail_clearly():
    model = build_tiny(MODS, LEVELS, 6)
    swapped = ('level2', 'level1', 'level3', 'level4')
    # same row count, so nothing else would notice the swap
    inputs, samples = make_batch(MODS, LEVELS, 6)
    for sample in samples:
        sample.set_metainfo(dict(levels=swapped))
    for mode in ('loss', 'predict'):
        with pytest.raises(ValueError, match=r"sample 's0' holds levels "
                           r"\('level2', 'level1'"):
            model(inputs, samples, mode=mode)


def test_other_levels_fail_clearly_not_with_index_error():
    model = build_tiny(MODS, LEVELS, 6)
    inputs, samples = make_batch(MODS, ('level1', 'level4'), 6)
    with pytest.raises(ValueError, match='same `levels`'):
        model(inputs, samples, mode='loss')
    # rows without metadata are still checked against the level count
    for sample in samples:
        sample.set_metainfo(dict(levels=None))
    with pytest.raises(ValueError, match=r'prior.*L=4'):
        model(inputs, samples, mode='loss')
    inputs, _ = make_batch(MODS, LEVELS, 6)
    with pytest.raises(ValueError, match=r'gt_sem_seg .*L=4'):
        model(inputs, samples, mode='loss')


def test_matching_levels_pass():
    model = build_tiny(MODS, ('level1', 'level3'), 6)
    inputs, samples = make_batch(MODS, ('level1', 'level3'), 6)
    losses = model(inputs, samples, mode='loss')
    assert torch.isfinite(losses['loss_level3'])
