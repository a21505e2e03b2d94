"""Tests of h2crop.taxonomy (real CSV, checks, errors, fallback)."""
import csv

import numpy as np
import pytest

from h2crop.constants import LEVELS, NUM_CROP_CLASSES
from h2crop.taxonomy import (
    BACKGROUND_NAME,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
)

HEADER = ['HCAT3_code'] + [f'{lv}_{c}' for lv in LEVELS
                           for c in ('id', 'name')]


def _write(path, rows, header=HEADER):
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def _row(code, *ids):
    out = [code]
    for lv, i in zip(LEVELS, ids):
        out += [i, f'{lv}_{i}']
    return out


def test_real_csv_counts_and_tree(taxonomy_csv):
    tax = load_taxonomy(taxonomy_csv, require_paper_counts=True)
    assert tax.num_crop_classes == NUM_CROP_CLASSES == (6, 36, 82, 101)
    assert tax.num_classes == (7, 37, 83, 102)
    assert tax.has_hierarchy
    assert all(n[0] == BACKGROUND_NAME for n in tax.names)
    assert len(tax.codes) == 102 and tax.codes[0] == ''
    for k in range(1, 4):
        par = tax.parent_map(LEVELS[k])
        assert par[0] == 0 and par[1:].min() >= 1
        assert set(par[1:]) == set(range(1, tax.num_classes[k - 1]))
    with pytest.raises(ValueError):
        tax.parent_map('level1')
    # ancestor maps compose the parent maps
    anc = tax.ancestor_map('level4', 'level1')
    assert np.array_equal(anc, tax.parents[1][tax.parents[2][tax.parents[3]]])
    assert np.array_equal(tax.ancestor_map(3, 3), np.arange(102))


def test_consistency_checks(taxonomy_csv):
    tax = load_taxonomy(taxonomy_csv)
    leaf = np.arange(102).reshape(2, 51)
    stack = np.stack([tax.ancestor_map(3, k)[leaf] for k in range(4)])
    assert tax.is_consistent(stack)
    assert tax.is_consistent(stack[2:], LEVELS[2:])
    bad = stack.copy()
    wrong = next(c for c in range(1, 102)
                 if tax.parents[3][c] != bad[2, 0, 1])
    bad[3, 0, 1] = wrong
    mask = tax.consistency_mask(bad)
    assert not mask[0, 1] and mask.sum() == mask.size - 1
    oor = stack.copy()
    oor[0, 1, 2] = 7  # level1 has ids 0..6
    assert not tax.consistency_mask(oor)[1, 2]
    with pytest.raises(ValueError, match='consecutive'):
        tax.consistency_mask(stack[[0, 2]], ('level1', 'level3'))
    with pytest.raises(ValueError, match='rows'):
        tax.consistency_mask(stack, LEVELS[:3])


def test_small_valid_file(tmp_path):
    path = _write(tmp_path / 't.csv', [_row('1', 1, 1, 1, 1),
                                       _row('2', 1, 2, 2, 2),
                                       _row('3', 2, 3, 3, 3),
                                       _row('4', 2, 3, 3, 4)])
    tax = Taxonomy.from_csv(path)
    assert tax.num_crop_classes == (2, 3, 3, 4)
    assert list(tax.parents[3]) == [0, 1, 2, 3, 3]
    with pytest.raises(TaxonomyError, match='paper'):
        load_taxonomy(path, require_paper_counts=True)


def test_non_contiguous_ids(tmp_path):
    path = _write(tmp_path / 't.csv', [_row('1', 1, 1, 1, 1),
                                       _row('2', 3, 2, 2, 2)])
    with pytest.raises(TaxonomyError, match='level1 ids are not contiguous'):
        Taxonomy.from_csv(path)


def test_two_parents(tmp_path):
    path = _write(tmp_path / 't.csv', [_row('1', 1, 1, 1, 1),
                                       _row('2', 2, 1, 2, 2)])
    with pytest.raises(TaxonomyError, match='two parents'):
        Taxonomy.from_csv(path)


def test_three_level_file(tmp_path):
    header = ['HCAT3_code'] + [f'{lv}_{c}' for lv in LEVELS[:3]
                               for c in ('id', 'name')]
    path = _write(tmp_path / 't.csv', [['1', 1, 'a', 1, 'b', 1, 'c']],
                  header=header)
    with pytest.raises(TaxonomyError, match='missing columns'):
        Taxonomy.from_csv(path)


def test_other_errors(tmp_path):
    with pytest.raises(TaxonomyError, match='not found'):
        Taxonomy.from_csv(str(tmp_path / 'absent.csv'))
    path = _write(tmp_path / 'zero.csv', [_row('1', 0, 1, 1, 1)])
    with pytest.raises(TaxonomyError, match='reserved'):
        Taxonomy.from_csv(path)
    path = _write(tmp_path / 'txt.csv', [_row('1', 'x', 1, 1, 1)])
    with pytest.raises(TaxonomyError, match='not an integer'):
        Taxonomy.from_csv(path)
    header = HEADER + ['level5_id']
    path = _write(tmp_path / 'five.csv', [_row('1', 1, 1, 1, 1) + [1]],
                  header=header)
    with pytest.raises(TaxonomyError, match='exactly 4 levels'):
        Taxonomy.from_csv(path)


def test_fallback():
    tax = load_taxonomy(None)
    assert tax.source == 'default' and not tax.has_hierarchy
    assert tax.num_crop_classes == NUM_CROP_CLASSES
    assert tax.num_classes == tuple(n + 1 for n in NUM_CROP_CLASSES)
    assert tax.level_names('level2')[0] == BACKGROUND_NAME
    assert len(tax.level_names(1)) == 37
    tax.check_paper_counts()
    assert all((p == 0).all() for p in tax.parents[1:])
