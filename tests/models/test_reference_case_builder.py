"""Reference models are built from their case description alone."""
import copy
import json
import os.path as osp

import pytest

from h2crop.constants import ENMAP, PRIOR, S2
from h2crop.verification.dualstream import (
    build_case_model,
    case_input_shape,
    case_levels,
)
from h2crop.verification.swin3d import case_encoder_kwargs


@pytest.fixture
def case(shared_reference):
    with open(osp.join(shared_reference, 'dualstream', 'case.json')) as f:
        return json.load(f)


def test_shared_case_as_described(case):
    assert case_input_shape(case, 'S2') == (2, 6, 10, 96, 96)
    model = build_case_model(case)
    assert model.modalities == (S2, ENMAP, PRIOR)
    assert model.num_frames == 6


def test_case_without_prior_with_another_window(case):
    other = copy.deepcopy(case)
    other['heads']['with_prior'] = False
    # without the prior one-hot, each head sees the feature plus the
    # previous level's logits
    other['heads']['head_in_channels'] = [32, 39, 69, 115]
    other['s2_encoder']['window_size'] = [2, 7, 7]
    model = build_case_model(other)
    assert model.modalities == (S2, ENMAP)
    windows = {tuple(m.window_size) for m in model.s2_encoder.modules()
               if hasattr(m, 'window_size')}
    assert windows == {(2, 7, 7)}
    # the stated channel counts are checked, not trusted
    other['heads']['head_in_channels'] = case['heads']['head_in_channels']
    with pytest.raises(AssertionError, match='head_in_channels'):
        build_case_model(other)


def test_case_choices_not_implemented_are_refused(case):
    other = copy.deepcopy(case)
    other['s2_encoder']['feature_fusion'] = 'sum'
    with pytest.raises(ValueError, match='feature_fusion'):
        build_case_model(other)
    with pytest.raises(ValueError, match='not understood'):
        case_encoder_kwargs(dict(case['s2_encoder'], drop_path=0.1))
    subset = copy.deepcopy(case)
    subset['heads']['num_classes_with_background'] = [7, 37]
    with pytest.raises(ValueError, match='state "levels"'):
        case_levels(subset)
