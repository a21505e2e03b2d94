"""Tests of the dataset checker: every planted defect is reported."""
import os
import os.path as osp
import shutil

import h5py
import numpy as np
import pytest

from h2crop.constants import DATA_LISTS_DIR, H5_DIR, H5_SUFFIX
from h2crop.datasets import Problem, check_dataset, check_tile
from h2crop.datasets.checker import resolve_taxonomy

from .._synthetic import make_tiny_dataset


@pytest.fixture(scope='module')
def clean_root(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp('clean'),
                             num_samples=12, size=48, spelling='mixed')


def _ids(root, split='train'):
    with open(osp.join(root, DATA_LISTS_DIR, f'{split}.txt')) as f:
        return f.read().split()


def _tile(root, sid):
    return osp.join(root, H5_DIR, sid + H5_SUFFIX)


def _name(f, prefix):
    return next(n for n in f if n.startswith(prefix))


def _replace(path, prefix, fn):
    with h5py.File(path, 'r+') as f:
        name = _name(f, prefix)
        data = f[name][()]
        del f[name]
        f.create_dataset(name, data=fn(data))
    return name


def test_clean_dataset_has_no_problems(clean_root):
    assert check_dataset(clean_root) == []
    assert check_dataset(clean_root, workers=2) == []
    assert check_dataset(clean_root, splits=['val'], read_images=False) == []
    assert resolve_taxonomy(clean_root).has_hierarchy


def test_every_planted_defect_is_reported(clean_root, tmp_path):
    root = str(tmp_path / 'bad')
    shutil.copytree(clean_root, root)
    train = _ids(root)
    expected = {}  # (path, key-substring) -> message substring

    # truncated file
    p = _tile(root, train[0])
    with open(p, 'r+b') as f:
        f.truncate(os.path.getsize(p) // 2)
    expected[(p, '-')] = 'truncated'
    # missing key
    p = _tile(root, train[1])
    with h5py.File(p, 'r+') as f:
        name = _name(f, 'EnMAP')
        del f[name]
    expected[(p, 'EnMAP')] = 'missing'
    # wrong shape
    p = _tile(root, train[2])
    name = _replace(p, 'S2', lambda a: a[:11])
    expected[(p, name)] = 'shape (11, 10, 48, 48) (expected (12, 10, 48, 48))'
    # wrong dtype
    p = _tile(root, train[3])
    name = _replace(p, 'prior', lambda a: a.astype(np.int32))
    expected[(p, name)] = 'dtype int32 (expected uint8)'
    # out-of-range label (level 2 has 36 crop classes)
    p = _tile(root, train[4])

    def out_of_range(a):
        a = a.copy()
        a[1, 0, 0] = 37
        return a
    _replace(p, 'label', out_of_range)
    expected[(p, 'label')] = 'level2 ids up to 37 (expected 0..36)'
    # level inconsistency: level-4 id whose parent is not the level-3 id
    p = _tile(root, train[5])
    tax = resolve_taxonomy(root)

    def inconsistent(a):
        a = a.copy()
        wrong = next(c for c in range(1, tax.num_classes[3])
                     if tax.parents[3][c] != a[2, 5, 5])
        a[3, 5, 5] = wrong
        return a
    _replace(p, 'label', inconsistent)
    expected[(p, 'label')] = 'not a taxonomy path'
    # id listed but file missing; duplicate id (within and across lists)
    lst = osp.join(root, DATA_LISTS_DIR, 'train.txt')
    val = osp.join(root, DATA_LISTS_DIR, 'val.txt')
    with open(lst, 'a') as f:
        f.write('ghost_tile\n' + train[6] + '\n')
    with open(val, 'a') as f:
        f.write(train[6] + '\n')
    expected[(_tile(root, 'ghost_tile'), '-')] = 'file missing'
    expected[(lst, train[6])] = 'duplicate id'
    expected[(val, train[6])] = 'duplicate id'

    problems = check_dataset(root)
    lines = [str(p) for p in problems]
    for (path, key), msg in expected.items():
        hits = [p for p in problems if p.path == path and key in p.key and
                msg in p.message]
        assert hits, f'{path} {key} {msg!r} not reported in {lines}'
    for p in problems:
        assert isinstance(p, Problem)
        assert str(p).startswith(f'{p.path}: {p.key}: ')
    reported = {p.path for p in problems}
    untouched = [_tile(root, s) for s in _ids(root, 'test')]
    assert not reported & set(untouched)
    assert len(problems) == len(expected)


def test_prior_checks_and_unlisted(clean_root, tmp_path):
    root = str(tmp_path / 'bad')
    shutil.copytree(clean_root, root)
    sid = _ids(root, 'test')[0]

    def prior_bad(a):
        a = a.copy()
        a[0, 1, 1] = 200
        return a
    name = _replace(_tile(root, sid), 'prior', prior_bad)
    shutil.copy(_tile(root, sid), _tile(root, 'extra'))
    problems = check_dataset(root)
    assert any(p.key == name and 'level1 ids up to 200' in p.message
               for p in problems)
    assert any(p.path == _tile(root, 'extra') and 'listed in no split' in
               p.message for p in problems)
    # a partial check does not report unlisted tiles
    assert not any('no split' in p.message
                   for p in check_dataset(root, splits=['test']))
    os.remove(osp.join(root, DATA_LISTS_DIR, 'val.txt'))
    assert any(p.path.endswith('val.txt') and 'not found' in p.message
               for p in check_dataset(root))


def test_check_tile_size_option(clean_root):
    sid = _ids(clean_root)[0]
    tax = resolve_taxonomy(clean_root)
    assert check_tile(_tile(clean_root, sid), tax) == []
    problems = check_tile(_tile(clean_root, sid), tax, tile_size=192)
    assert {p.key for p in problems} >= {'label'}
    assert all('expected' in p.message for p in problems)


def test_a_taxonomy_shorter_than_the_data_is_reported_on_the_csv(
        clean_root, tmp_path):
    root = str(tmp_path / 'short')
    shutil.copytree(clean_root, root)
    csv_path = osp.join(root, 'cascade_labels.csv')
    # the largest level-4 id of the data (labels and priors), by numpy
    tiles = [_tile(root, s) for split in ('train', 'val', 'test')
             for s in _ids(root, split)]
    stacks = {}
    for path in tiles:
        with h5py.File(path, 'r') as f:
            stacks[path] = [f[_name(f, 'label')][()],
                            f[_name(f, 'prior')][()]]
    top = max(int(a[3].max()) for pair in stacks.values() for a in pair)
    with open(csv_path) as f:
        lines = f.read().splitlines()
    # drop the rows of the level-4 ids >= top (the file ends with them)
    kept = [ln for ln in lines[1:] if int(ln.split(',')[7]) < top]
    with open(csv_path, 'w') as f:
        f.write('\n'.join(lines[:1] + kept) + '\n')
    rows = len(kept)
    using = {p for p, pair in stacks.items()
             if any(int(a[3].max()) > rows for a in pair)}
    problems = check_dataset(root)
    level4 = [p for p in problems if p.path == csv_path and
              'level4' in p.message]
    assert len(level4) == 1
    assert level4[0].message.startswith(
        f'the taxonomy ({rows} rows) has {rows} level4 classes, but '
        f'{len(using)} tile(s) use level4 ids up to {top} (e.g. ')
    assert 'rows are missing from the taxonomy' in level4[0].message
    # summarised: no tile line about level-4 ids
    assert not [p for p in problems if p.path != csv_path and
                'level4 ids' in p.message]
