"""Under 2-process CPU DDP, validation scores the model rank 0 saves."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from h2crop.constants import DATA_LISTS_DIR, SPLITS
from h2crop.engine.buffer_sync import broadcast_buffers
from h2crop.engine.experiment import resolve_experiment

from .._ports import free_port
from .tiny_cfg import REPO, tiny_runner_cfg


def test_single_process_broadcast_is_a_no_op():
    model = nn.BatchNorm2d(3)
    model.running_mean.fill_(2.0)
    assert broadcast_buffers(model) == 0
    assert torch.all(model.running_mean == 2.0)


def _val_scalars(work_dir: str) -> dict:
    files = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[0]) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    val = [r for r in rows if 'mFscore' in r]
    assert val, 'no validation scores logged'
    return val[-1]


@pytest.mark.slow
def test_ddp_validation_scores_the_saved_checkpoint(tiny_dataset_96,
                                                    tmp_path):
    work = str(tmp_path / 'ddp')
    cfg = tiny_runner_cfg(tiny_dataset_96, work, resolve=False)
    # validate on the training tiles: 8 tiles, 4 per rank, so each rank's
    # own BatchNorm statistics would change its half of the predictions
    lists = tmp_path / 'lists'
    lists.mkdir()
    train = osp.join(tiny_dataset_96, DATA_LISTS_DIR, 'train.txt')
    for split in SPLITS:
        shutil.copy(train, lists / f'{split}.txt')
    cfg.data_lists = str(lists)
    cfg = resolve_experiment(cfg)
    cfg.custom_imports = dict(imports=['tests.engine.bn_probe'],
                              allow_failed_imports=False)
    cfg.custom_hooks = [dict(type='BufferProbeHook')]
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(free_port()),
               PYTHON=sys.executable, PYTHONPATH=REPO)
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg_file, '2',
         '--work-dir', work, '--skip-preflight'],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    validated = _val_scalars(work)

    ckpt = osp.join(work, 'epoch_1.pth')
    saved = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    bn = [k for k in saved if k.endswith('running_mean')]
    assert bn, 'the tiny model has no BatchNorm to check'
    for rank in (0, 1):
        used = torch.load(osp.join(work, f'val_buffers_rank{rank}.pt'))
        for key in bn:
            assert torch.equal(used[key], saved[key]), (rank, key)

    single = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), cfg_file, ckpt,
         '--work-dir', str(tmp_path / 't1'), '--skip-preflight'],
        env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
        text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    files = glob.glob(str(tmp_path / 't1' / 'test_metrics_*.json'))
    with open(files[0]) as f:
        tested = json.load(f)['metrics']
    for key in ('mFscore', 'mIoU', 'level1/mFscore', 'level4/mFscore',
                'level4/aAcc'):
        assert validated[key] == pytest.approx(tested[key], abs=1e-6), key
