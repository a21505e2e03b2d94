"""Pre-flight checks stop a run before its first iteration."""
import os.path as osp

import h5py
import pytest

from h2crop.constants import DATA_LISTS_DIR, H5_DIR, H5_SUFFIX
from h2crop.engine.preflight import (
    PreflightError,
    preflight_problems,
    run_preflight,
)
from h2crop.engine.runner_builder import build_runner_from_args

from .._synthetic import make_tiny_dataset
from .test_runner import _load_tool
from .tiny_cfg import tiny_runner_cfg


@pytest.fixture
def root(tmp_path):
    return make_tiny_dataset(tmp_path, num_samples=6, size=48, seed=1)


def _cfg(root, tmp_path):
    cfg = tiny_runner_cfg(root, str(tmp_path / 'work'), resolve=False)
    cfg.tile_size = 48
    from h2crop.engine.experiment import resolve_experiment
    return resolve_experiment(cfg)


def _list(root, split):
    return osp.join(root, DATA_LISTS_DIR, f'{split}.txt')


def test_clean_data_passes_and_counts_tiles(root, tmp_path):
    problems, counts = preflight_problems(_cfg(root, tmp_path))
    assert problems == []
    assert counts['tiles'] == 6
    assert sum(counts[s] for s in ('train', 'val', 'test')) == 6
    run_preflight(_cfg(root, tmp_path))


def test_empty_val_list_is_reported_before_training(root, tmp_path):
    open(_list(root, 'val'), 'w').close()
    cfg = _cfg(root, tmp_path)
    with pytest.raises(PreflightError, match='split list is empty') as err:
        run_preflight(cfg)
    assert _list(root, 'val') in str(err.value)
    assert '--skip-preflight' in str(err.value)


def test_train_test_leak_is_reported(root, tmp_path):
    train_id = open(_list(root, 'train')).read().split()[0]
    with open(_list(root, 'test'), 'a') as f:
        f.write(train_id + '\n')
    problems, _ = preflight_problems(_cfg(root, tmp_path))
    assert any('duplicate id' in p.message and p.key == train_id
               for p in problems)


def test_label_ids_beyond_the_taxonomy_and_unusable_first_tile(root,
                                                               tmp_path):
    ids = open(_list(root, 'train')).read().split()
    with h5py.File(osp.join(root, H5_DIR, ids[-1] + H5_SUFFIX), 'r+') as f:
        label = f['label'][()]
        label[3, 0, 0] = 250
        del f['label']
        f.create_dataset('label', data=label)
    first = osp.join(root, H5_DIR, ids[0] + H5_SUFFIX)
    with h5py.File(first, 'r+') as f:
        name = next(n for n in f if n.startswith('EnMAP'))
        del f[name]
    problems, _ = preflight_problems(_cfg(root, tmp_path))
    text = '\n'.join(map(str, problems))
    assert 'level4 ids up to 250' in text
    assert first in text and 'EnMAP' in text


def test_tile_size_choice_is_checked(root, tmp_path):
    cfg = tiny_runner_cfg(root, str(tmp_path / 'w'), resolve=False)
    cfg.tile_size = 96  # the tiles are 48 px
    from h2crop.engine.experiment import resolve_experiment
    problems, _ = preflight_problems(resolve_experiment(cfg))
    assert problems and all('96' in p.message for p in problems[:1])


def test_train_tool_stops_with_the_checkers_message(root, tmp_path):
    open(_list(root, 'val'), 'w').close()
    cfg_file = str(tmp_path / 'cfg.py')
    _cfg(root, tmp_path).dump(cfg_file)
    train = _load_tool('train')
    with pytest.raises(SystemExit, match='split list is empty'):
        train.main([cfg_file, '--work-dir', str(tmp_path / 'w')])
    args = train.parse_args([cfg_file, '--work-dir', str(tmp_path / 'w'),
                             '--skip-preflight'])
    assert build_runner_from_args(args, 'train') is not None


def test_missing_taxonomy_file_is_a_problem_not_a_traceback(root, tmp_path):
    cfg = tiny_runner_cfg(root, str(tmp_path / 'w'), resolve=False)
    cfg.tile_size = 48
    cfg.taxonomy = str(tmp_path / 'absent.csv')
    from h2crop.engine.experiment import resolve_experiment
    with pytest.raises(PreflightError, match='absent.csv.*taxonomy='):
        run_preflight(resolve_experiment(cfg))


def test_short_taxonomy_names_the_csv_and_counts_stay_right(root, tmp_path):
    tax = osp.join(root, 'cascade_labels.csv')
    top, tiles = 0, {}
    for split in ('train', 'val', 'test'):
        for sid in open(_list(root, split)).read().split():
            with h5py.File(osp.join(root, H5_DIR, sid + H5_SUFFIX)) as h5:
                prior = next(n for n in h5 if n.startswith('prior'))
                tiles[sid] = max(h5['label'][3].max(), h5[prior][3].max())
                top = max(top, int(tiles[sid]))
    with open(tax) as f:
        lines = f.read().splitlines()
    # the rows of the largest level-4 id used and beyond are missing
    kept = [ln for ln in lines[1:] if int(ln.split(',')[7]) < top]
    with open(tax, 'w') as f:
        f.write('\n'.join(lines[:1] + kept) + '\n')
    using = [sid for sid, m in tiles.items() if m > len(kept)]
    problems, counts = preflight_problems(_cfg(root, tmp_path))
    assert counts['tiles'] == 6
    assert problems[0].path == tax  # the CSV, not the tiles
    level4 = [p for p in problems if 'level4' in p.message]
    assert len(level4) == 1 and level4[0].path == tax
    assert f'({len(kept)} rows) has {len(kept)} level4 classes, but ' \
        f'{len(using)} tile(s) use level4 ids up to {top}' in str(level4[0])
    with pytest.raises(PreflightError, match=tax):
        run_preflight(_cfg(root, tmp_path))
    # a taxonomy that cannot load: the lists are still counted
    with open(tax, 'w') as f:
        f.write('\n'.join(lines[:1] + lines[2:]) + '\n')
    problems, counts = preflight_problems(_cfg(root, tmp_path))
    assert counts['tiles'] == 0
    assert sum(counts[s] for s in ('train', 'val', 'test')) == 6
    assert problems[0].path == tax and 'cannot load' in problems[0].message
