"""Tests of the data CLIs: generator, checker (subprocess) and benchmark."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import h5py

from h2crop.constants import DATA_LISTS_DIR, H5_DIR, H5_SUFFIX

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAKE = osp.join(REPO, 'tools', 'misc', 'make_synthetic_dataset.py')
CHECK = osp.join(REPO, 'tools', 'misc', 'check_dataset.py')
BENCH = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_data.py')


def _load(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_generate_then_check_via_cli(tmp_path, capsys):
    root = str(tmp_path / 'data')
    assert _load(MAKE).main([root, '--num-samples', '4', '--size', '48',
                             '--seed', '3', '--spelling', 'readme']) == 0
    assert 'wrote 4 tiles' in capsys.readouterr().out
    assert _load(CHECK).main([root]) == 0
    assert capsys.readouterr().out == ''
    # plant a defect: one line naming the file and key, exit 1
    sid = open(osp.join(root, DATA_LISTS_DIR, 'train.txt')).read().split()[0]
    path = osp.join(root, H5_DIR, sid + H5_SUFFIX)
    with h5py.File(path, 'r+') as f:
        del f['prior']
    out = _run(CHECK, root, '--quick')
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        f'{path}: priors|prior: missing (expected one of priors|prior)']


def test_generator_cli_rejects_bad_size(tmp_path):
    module = _load(MAKE)
    assert module.main([str(tmp_path / 'x'), '--num-samples', '3',
                        '--size', '50']) == 2


def test_checker_cli_in_process(tmp_path, capsys):
    make, check = _load(MAKE), _load(CHECK)
    root = str(tmp_path / 'd')
    assert make.main([root, '--num-samples', '3', '--size', '48']) == 0
    assert check.main([root, '--splits', 'train', 'val', 'test',
                       '--workers', '2']) == 0
    with open(osp.join(root, DATA_LISTS_DIR, 'test.txt'), 'a') as f:
        f.write('missing_tile\n')
    capsys.readouterr()
    assert check.main([root]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [osp.join(root, H5_DIR, 'missing_tile' + H5_SUFFIX) +
                     ': -: file missing (listed in test.txt line 2)']


def test_benchmark_runs_small(capsys):
    bench = _load(BENCH)
    rows = bench.main(['--num-samples', '3', '--size', '48', '--workers',
                       '0', '--epochs', '1', '--end-months', '12', '6'])
    assert [(r['stage'], r['end_month'], r['workers']) for r in rows] == [
        ('load+augment', 12, 0), ('end-to-end', 12, 0),
        ('load+augment', 6, 0), ('end-to-end', 6, 0)]
    assert all(r['ms_per_sample'] > 0 and r['samples_per_s'] > 0
               for r in rows)
    assert 'ms/sample' in capsys.readouterr().out


def test_generator_refuses_a_non_empty_folder(tmp_path, capsys):
    make = _load(MAKE)
    root = str(tmp_path / 'd')
    assert make.main([root, '--num-samples', '3', '--size', '48']) == 0
    mine = osp.join(root, 'my_notes.txt')
    with open(mine, 'w') as f:
        f.write('keep')
    capsys.readouterr()
    assert make.main([root, '--num-samples', '4', '--size', '48']) == 2
    assert '--overwrite' in capsys.readouterr().err
    assert len(os.listdir(osp.join(root, H5_DIR))) == 3
    assert make.main([root, '--num-samples', '4', '--size', '48',
                      '--overwrite']) == 0
    assert len(os.listdir(osp.join(root, H5_DIR))) == 4  # none left over
    assert open(mine).read() == 'keep'


def test_checker_cli_reports_empty_list_and_counts(tmp_path, capsys):
    make, check = _load(MAKE), _load(CHECK)
    root = str(tmp_path / 'd')
    assert make.main([root, '--num-samples', '5', '--size', '48']) == 0
    capsys.readouterr()
    assert check.main([root]) == 0
    assert 'checked 5 tile(s)' in capsys.readouterr().err
    val = osp.join(root, DATA_LISTS_DIR, 'val.txt')
    open(val, 'w').close()
    assert check.main([root, '--allow-unlisted']) == 1
    out = capsys.readouterr()
    assert f'{val}: -: split list is empty' in out.out
    assert 'val 0' in out.err
