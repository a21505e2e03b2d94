"""Runner-level tests on tiny synthetic tiles: smoke, resume, AMP, DDP."""
import glob
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from h2crop.engine import load_trusted_checkpoint
from h2crop.engine.runner_builder import build_runner_from_args
from h2crop.registry import RUNNERS
from h2crop.utils import register_all_modules

from .._ports import free_port
from .tiny_cfg import REPO, tiny_runner_cfg

register_all_modules(init_default_scope=False)


def _load_tool(name: str):
    """Import tools/<name>.py as a module (for its argument parser)."""
    spec = importlib.util.spec_from_file_location(
        f'h2crop_tool_{name}', osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _test_metrics(work_dir: str) -> dict:
    files = sorted(glob.glob(osp.join(work_dir, 'test_metrics_*.json')))
    assert files, f'no test metrics JSON in {work_dir}'
    with open(files[-1]) as f:
        return json.load(f)['metrics']


def _weights(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_train_val_test_smoke(tiny_dataset_96, tmp_path):
    work = str(tmp_path / 'work')
    cfg = tiny_runner_cfg(tiny_dataset_96, work)
    runner = RUNNERS.build(cfg)
    runner.train()
    assert runner.iter == 4  # 8 training tiles, batch 2, one epoch
    best = glob.glob(osp.join(work, 'best_mFscore_epoch_1.pth'))
    assert best and osp.isfile(osp.join(work, 'epoch_1.pth'))
    last = open(osp.join(work, 'last_checkpoint')).read().strip()
    assert last.endswith('epoch_1.pth')
    # every checkpoint carries the experiment it was trained in
    from h2crop.engine.checkpoint_experiment import EXPERIMENT_META_KEY
    from h2crop.taxonomy import load_taxonomy
    digest = load_taxonomy(osp.join(tiny_dataset_96,
                                    'cascade_labels.csv')).digest()
    for path in (best[0], last):
        record = torch.load(path, weights_only=False)['meta'][
            EXPERIMENT_META_KEY]
        assert record['taxonomy_digest'] == digest
        assert record['end_month'] == cfg.end_month
        assert record['tile_size'] == cfg.tile_size

    # tools/test.py path: weights only (a missing AgriFM file must not
    # matter), CSV/JSON into the work dir
    cfg.model.s2_encoder.init_cfg = dict(
        type='AgriFM', checkpoint=str(tmp_path / 'absent' / 'AgriFM.pth'))
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    args = _load_tool('test').parse_args([
        cfg_file, best[0], '--work-dir', str(tmp_path / 'test'), '--out',
        str(tmp_path / 'pred'), '--show-dir', str(tmp_path / 'vis')])
    tester = build_runner_from_args(args, mode='test')
    metrics = tester.test()
    for level in ('level1', 'level2', 'level3', 'level4'):
        assert 0 <= metrics[f'{level}/mFscore'] <= 100
    assert 'hierarchy_consistency' in metrics
    saved = _test_metrics(str(tmp_path / 'test'))
    assert saved['mFscore'] == pytest.approx(metrics['mFscore'])
    assert glob.glob(str(tmp_path / 'test' / 'test_metrics_*per_class.csv'))
    assert glob.glob(str(tmp_path / 'vis' / '*.png'))
    assert glob.glob(str(tmp_path / 'pred' / '*_level4.png'))


def test_a_failing_hook_after_epoch_1_keeps_its_weights(tiny_dataset_96,
                                                       tmp_path):
    """The issue's case: a misspelt checkpoint-hook key (which the option
    check refuses; built here directly) fails after epoch 1; the epoch's
    weights are an emergency checkpoint that --resume takes."""
    work = str(tmp_path / 'work')
    cfg = tiny_runner_cfg(tiny_dataset_96, work, max_epochs=2)
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    cfg.default_hooks.checkpoint.intervall = 1
    runner = RUNNERS.build(cfg)
    with pytest.raises(TypeError, match='intervall') as err:
        runner.train()
    path = osp.join(work, 'emergency_epoch_1.pth')
    assert any(f'--resume {path}' in note for note in err.value.__notes__)
    assert not osp.exists(osp.join(work, 'epoch_1.pth'))
    saved = load_trusted_checkpoint(path)
    assert (saved['meta']['epoch'], saved['meta']['iter']) == (1, 4)
    weights = _weights(runner.model)
    assert weights.keys() == saved['state_dict'].keys()
    for key, value in weights.items():
        assert torch.equal(saved['state_dict'][key], value), key

    # tools/train.py --resume accepts it (epoch 2 is left) and its weights
    # load strictly; resuming from such a file to the uninterrupted weights
    # is tested on the toy problem (tests/engine/test_checkpoint.py)
    args = _load_tool('train').parse_args(
        [cfg_file, '--work-dir', work, '--resume', path])
    resumed = build_runner_from_args(args, mode='train')
    assert resumed.cfg.load_from == path and resumed.cfg.resume
    resumed.load_checkpoint(path)
    for key, value in _weights(resumed.model).items():
        assert torch.equal(weights[key], value), key


def test_interrupted_training_resumes_to_the_same_weights(
        tiny_dataset_96, tmp_path):
    straight = RUNNERS.build(
        tiny_runner_cfg(tiny_dataset_96, str(tmp_path / 'a'), max_epochs=2))
    straight.train()
    expected = _weights(straight.model)

    class Killed(Exception):
        pass

    first = RUNNERS.build(
        tiny_runner_cfg(tiny_dataset_96, str(tmp_path / 'b'), max_epochs=2))
    real_step = first.model.train_step

    def train_step(data, optim_wrapper):
        if first.iter == 6:  # mid-way through epoch 2
            raise Killed()
        return real_step(data, optim_wrapper)

    first.model.train_step = train_step
    with pytest.raises(Killed):
        first.train()
    cfg = tiny_runner_cfg(tiny_dataset_96, str(tmp_path / 'b'), max_epochs=2)
    cfg.resume = True
    resumed = RUNNERS.build(cfg)
    resumed.train()
    assert resumed.iter == straight.iter == 8
    got = _weights(resumed.model)
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, rtol=1e-5, atol=1e-6,
                                   msg=key)


def test_amp_on_cpu_runs_bf16_autocast(tiny_dataset_96, tmp_path):
    cfg_file = str(tmp_path / 'cfg.py')
    tiny_runner_cfg(tiny_dataset_96, str(tmp_path / 'w')).dump(cfg_file)
    parse_args = _load_tool('train').parse_args
    args = parse_args([cfg_file, '--amp', '--work-dir', str(tmp_path / 'w')])
    runner = build_runner_from_args(args, mode='train')
    runner.train()
    assert type(runner.optim_wrapper).__name__ == 'AutocastOptimWrapper'
    assert runner.iter == 4
    args = parse_args([cfg_file, '--amp', '--amp-dtype', 'float16'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='float16 needs CUDA'):
            build_runner_from_args(args, mode='train')


def _dist(script: str, *args: str, port: int) -> None:
    """Run tools/dist_{train,test}.sh with 2 processes (gloo on CPU)."""
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(port),
               PYTHON=sys.executable)
    cmd = ['bash', osp.join(REPO, 'tools', script), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_cpu_ddp_train_and_test_match_single_process(tiny_dataset_96,
                                                     tmp_path):
    # 3 test tiles over 2 ranks: the sampler pads one, the metric drops it.
    # Split lists of their own (data_lists): one validation tile moves to
    # the test split, so no tile is in two splits.
    lists = osp.join(str(tmp_path), 'lists')
    os.makedirs(lists)
    split = {s: open(osp.join(tiny_dataset_96, 'data_lists',
                              f'{s}.txt')).read().split()
             for s in ('train', 'val', 'test')}
    split['test'] = split['test'][:2] + split['val'][:1]
    split['val'] = split['val'][1:]
    assert len(split['test']) == 3 and split['val']
    for name, ids in split.items():
        with open(osp.join(lists, f'{name}.txt'), 'w') as f:
            f.write('\n'.join(ids) + '\n')
    cfg = tiny_runner_cfg(tiny_dataset_96, str(tmp_path / 'ddp'),
                          resolve=False)
    cfg.data_lists = lists
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)

    _dist('dist_train.sh', cfg_file, '2', '--work-dir', str(tmp_path / 'ddp'),
          port=free_port())
    ckpt = osp.join(str(tmp_path / 'ddp'), 'epoch_1.pth')
    assert osp.isfile(ckpt)
    _dist('dist_test.sh', cfg_file, ckpt, '2', '--work-dir',
          str(tmp_path / 't2'), port=free_port())
    env = dict(os.environ, PYTHONPATH=REPO)
    single = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), cfg_file, ckpt,
         '--work-dir', str(tmp_path / 't1')], env=env, capture_output=True,
        text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    two, one = _test_metrics(str(tmp_path / 't2')), _test_metrics(
        str(tmp_path / 't1'))
    assert two == one
