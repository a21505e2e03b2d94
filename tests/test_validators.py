"""One validator per concept: every component refuses the same bad levels /
modalities with the same message (h2crop.validators)."""
import numpy as np
import pytest

from h2crop.datasets import H2CropDataset
from h2crop.evaluation import HierarchicalSegMetric
from h2crop.models import CascadeHeads, H2CropSegmentor
from h2crop.taxonomy import Taxonomy
from h2crop.validators import check_levels, check_modalities

BAD_LEVELS = [(), ('level2', 'level1'), ('level1', 'level1'), ('level5', ),
              'level1']
BAD_MODALITIES = [('enmap', ), ('s2', 's2'), ('s2', 'hs'), 's2']


def _message(check, value) -> str:
    with pytest.raises(ValueError) as info:
        check(value)
    return str(info.value)


def _segmentor(levels=('level1', ), modalities=('s2', )):
    # validation runs before any sub-module is built
    return H2CropSegmentor(s2_encoder=dict(type='S2TemporalSwin'),
                           neck=dict(type='FusionDecoder'),
                           head=dict(type='CascadeHeads'),
                           modalities=modalities, levels=levels)


LEVEL_USERS = {
    'dataset': lambda lv: H2CropDataset(ann_file='x.txt', levels=lv,
                                        lazy_init=True),
    'segmentor': lambda lv: _segmentor(levels=lv),
    'heads': lambda lv: CascadeHeads(in_channels=8, num_classes=[2],
                                     levels=lv),
    'metric': lambda lv: HierarchicalSegMetric(levels=lv),
    'taxonomy': lambda lv: Taxonomy.default().consistency_mask(
        np.zeros((max(len(lv), 1), 2, 2), dtype=np.int64), lv),
}
MODALITY_USERS = {
    'dataset': lambda m: H2CropDataset(ann_file='x.txt', modalities=m,
                                       lazy_init=True),
    'segmentor': lambda m: _segmentor(modalities=m),
}


@pytest.mark.parametrize('component', sorted(LEVEL_USERS))
@pytest.mark.parametrize('levels', BAD_LEVELS, ids=repr)
def test_every_component_refuses_bad_levels_alike(component, levels):
    expected = _message(check_levels, levels)
    with pytest.raises(ValueError) as info:
        LEVEL_USERS[component](levels)
    assert str(info.value) == expected


@pytest.mark.parametrize('component', sorted(MODALITY_USERS))
@pytest.mark.parametrize('modalities', BAD_MODALITIES, ids=repr)
def test_every_component_refuses_bad_modalities_alike(component, modalities):
    expected = _message(check_modalities, modalities)
    with pytest.raises(ValueError) as info:
        MODALITY_USERS[component](modalities)
    assert str(info.value) == expected


@pytest.mark.parametrize('levels', [('level1', ), ('level2', 'level4'),
                                    ('level1', 'level2', 'level3', 'level4')])
def test_good_levels_pass(levels):
    assert check_levels(list(levels)) == levels


def test_modalities_order_is_free():
    assert check_modalities(['prior', 's2']) == ('prior', 's2')


@pytest.mark.parametrize('levels, match', [
    ((), 'at least one'), (('level2', 'level1'), 'coarse to fine'),
    (('level1', 'level1'), 'repeated'), (('level5', ), 'unknown'),
    ('level1', 'single string')])
def test_level_messages_name_the_rule(levels, match):
    with pytest.raises(ValueError, match=match):
        check_levels(levels)
