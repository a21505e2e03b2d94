"""Tests of the synthetic tile generator."""
import json
import os.path as osp

import h5py
import numpy as np
import pytest

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_BANDS,
    H5_DIR,
    H5_NAMES,
    H5_SUFFIX,
    LEVELS,
    NUM_CROP_CLASSES,
    NUM_MONTHS,
    PRIOR,
    S2,
    S2_BANDS,
)
from h2crop.datasets.h5io import LABEL, find_key
from h2crop.datasets.synthetic import (
    INFO_FILE,
    SPLITS,
    STYLES,
    TAXONOMY_FILE,
    _ClassModel,
    make_synthetic_dataset,
    synthetic_taxonomy,
)
from h2crop.taxonomy import Taxonomy

from .._synthetic import make_tiny_dataset


def _read_all(root, sid):
    with h5py.File(osp.join(root, H5_DIR, sid + H5_SUFFIX), 'r') as f:
        return {c: f[find_key(f, c)][()] for c in (S2, ENMAP, LABEL, PRIOR)}


def _ids(root):
    out = {}
    for split in SPLITS:
        with open(osp.join(root, DATA_LISTS_DIR, f'{split}.txt')) as f:
            out[split] = f.read().split()
    return out


def test_synthetic_taxonomy_is_strict_tree_with_paper_counts(tmp_path):
    tax = synthetic_taxonomy(3)
    assert tax.num_crop_classes == NUM_CROP_CLASSES
    assert tax.has_hierarchy
    for k in range(1, len(LEVELS)):
        par = tax.parent_map(k)
        assert par[0] == 0
        # every crop class of the level above has at least one child
        assert set(par[1:]) == set(range(1, tax.num_classes[k - 1]))
    assert np.array_equal(synthetic_taxonomy(3).parents[3], tax.parents[3])


def test_layout_splits_and_consistency(tmp_path):
    root = make_tiny_dataset(tmp_path, num_samples=7, size=48, seed=1)
    ids = _ids(root)
    assert all(ids[s] for s in SPLITS)
    flat = sum(ids.values(), [])
    assert len(flat) == len(set(flat)) == 7
    tax = Taxonomy.from_csv(osp.join(root, TAXONOMY_FILE))
    assert tax.num_crop_classes == NUM_CROP_CLASSES
    info = json.load(open(osp.join(root, INFO_FILE)))
    assert info['size'] == 48 and info['num_samples'] == 7
    for sid in flat:
        a = _read_all(root, sid)
        assert a[S2].shape == (NUM_MONTHS, S2_BANDS, 48, 48)
        assert a[S2].dtype == np.int16
        assert a[ENMAP].shape == (ENMAP_BANDS, 16, 16)
        assert a[ENMAP].dtype == np.int16
        assert a[LABEL].shape == a[PRIOR].shape == (len(LEVELS), 48, 48)
        assert a[LABEL].dtype == a[PRIOR].dtype == np.uint8
        assert 0 <= a[S2].min() and a[S2].max() <= 10000
        assert 100 < a[ENMAP].mean() < 6000
        assert tax.is_consistent(a[LABEL]) and tax.is_consistent(a[PRIOR])
        # background present, and a few (not many) crop classes per tile
        assert (a[LABEL][0] == 0).any()
        crops = np.unique(a[LABEL][3])
        assert 2 <= len(crops) <= 10


def test_deterministic_for_a_seed(tmp_path):
    a = make_tiny_dataset(tmp_path / 'a', num_samples=3, seed=5)
    b = make_tiny_dataset(tmp_path / 'b', num_samples=3, seed=5)
    c = make_tiny_dataset(tmp_path / 'c', num_samples=3, seed=6)
    assert _ids(a) == _ids(b)
    sid = _ids(a)['train'][0]
    ta, tb, tc = _read_all(a, sid), _read_all(b, sid), _read_all(c, sid)
    for key in ta:
        assert np.array_equal(ta[key], tb[key])
    assert not np.array_equal(ta[S2], tc[S2])


def test_prior_change_fraction(tmp_path):
    same = make_tiny_dataset(tmp_path / 's', num_samples=3,
                             prior_change_fraction=0.0)
    allc = make_tiny_dataset(tmp_path / 'a', num_samples=3,
                             prior_change_fraction=1.0)
    some = make_tiny_dataset(tmp_path / 'm', num_samples=12, size=96,
                             prior_change_fraction=0.3)
    for sid in sum(_ids(same).values(), []):
        t = _read_all(same, sid)
        assert np.array_equal(t[LABEL], t[PRIOR])
    for sid in sum(_ids(allc).values(), []):
        t = _read_all(allc, sid)
        crop = t[LABEL][3] > 0
        assert (t[PRIOR][3][crop] != t[LABEL][3][crop]).all()
        assert (t[PRIOR][:, ~crop] == 0).all()
    changed = []
    for sid in sum(_ids(some).values(), []):
        t = _read_all(some, sid)
        crop = t[LABEL][3] > 0
        changed.append((t[PRIOR][3][crop] != t[LABEL][3][crop]).mean())
    assert 0.1 < np.mean(changed) < 0.5


def test_both_spellings(tmp_path):
    root = make_tiny_dataset(tmp_path, num_samples=4, spelling='mixed')
    used = set()
    for sid in sum(_ids(root).values(), []):
        with h5py.File(osp.join(root, H5_DIR, sid + H5_SUFFIX), 'r') as f:
            used.add(tuple(sorted(f.keys())))
    assert len(used) == 2
    for names in H5_NAMES.values():
        assert all(any(n in keys for n in names) for keys in used)


def test_real_taxonomy(tmp_path, taxonomy_csv):
    root = make_tiny_dataset(tmp_path, num_samples=3, taxonomy=taxonomy_csv)
    tax = Taxonomy.from_csv(taxonomy_csv)
    for sid in sum(_ids(root).values(), []):
        t = _read_all(root, sid)
        assert tax.is_consistent(t[LABEL]) and tax.is_consistent(t[PRIOR])


def test_twins_differ_only_in_narrow_enmap_bands():
    model = _ClassModel(synthetic_taxonomy(0), seed=0)
    twins = np.flatnonzero(model.twin_of)
    assert len(twins) >= 3
    for c in twins:
        t = model.twin_of[c]
        assert model.taxonomy.parents[3][c] == model.taxonomy.parents[3][t]
        for key in ('g', 'length', 'peak', 's2'):
            assert np.array_equal(model.params[key][c], model.params[key][t])
        diff = np.abs(model.narrow[c] - model.narrow[t])
        assert 2 <= (diff > 0.05).sum() <= 30  # a few narrow bands
    # non-twin siblings differ in S2
    normal = [c for c in range(1, len(model.twin_of))
              if not model.twin_of[c]]
    s2 = model.params['s2'][normal]
    assert len(np.unique(s2.round(6), axis=0)) == len(normal)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='multiple of 3'):
        make_synthetic_dataset(str(tmp_path), 3, size=50)
    with pytest.raises(ValueError, match='every\n?.*split|split'):
        make_synthetic_dataset(str(tmp_path), 2, size=48)
    with pytest.raises(ValueError, match='spelling'):
        make_synthetic_dataset(str(tmp_path), 3, size=48, spelling='x')


def test_alt_style_is_made_differently(tmp_path):
    """The 'alt' tiles differ in spectra, features, fields and scaling."""
    tax = synthetic_taxonomy(0)
    default = _ClassModel(tax, seed=0)
    alt = _ClassModel(tax, seed=0, style=STYLES['alt'])
    assert not np.allclose(default.hs_veg, alt.hs_veg)
    assert not np.allclose(default.hs_soil, alt.hs_soil)
    # absorption features of the alt twins are wider: bands per feature
    # (runs of bands absorbing more than 3 %)
    def bands_per_feature(model):
        widths = []
        for c in np.flatnonzero(model.twin_of):
            deep = (1 - model.narrow[c]) > 0.03
            runs = np.count_nonzero(np.diff(deep.astype(int)) == 1)
            widths.append(deep.sum() / max(runs, 1))
        return np.mean(widths)
    assert bands_per_feature(alt) > 1.5 * bands_per_feature(default)
    root = str(tmp_path / 'alt')
    make_synthetic_dataset(root, 3, size=48, seed=1, style='alt')
    with open(osp.join(root, INFO_FILE)) as f:
        assert json.load(f)['style'] == 'alt'
    sid = _ids(root)['train'][0]
    tile = _read_all(root, sid)
    # S2 carries the L2A +1000 offset: no value below it
    assert tile[S2].min() >= STYLES['alt'].s2_offset
    assert len(np.unique(tile[LABEL][3])) >= 2
    with pytest.raises(ValueError, match='style'):
        make_synthetic_dataset(str(tmp_path / 'x'), 3, size=48, style='y')
