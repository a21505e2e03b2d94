"""Nothing overwritten, nothing resumed from nowhere."""
import os
import os.path as osp

import pytest
import torch

from h2crop.engine.runner_builder import prepare_cfg
from h2crop.engine.work_dir import (
    WorkDirError,
    check_work_dir,
    clear_checkpoints,
    drop_pretrained_init,
)

from .test_runner import _load_tool
from .tiny_cfg import REPO

PAPER = osp.join(REPO, 'configs', 'hyper_benefits', 'crops_S2_H_P_jun.py')


def _touch(path, text=''):
    with open(path, 'w') as f:
        f.write(text)


def test_fresh_work_dir_is_fine(tmp_path):
    assert check_work_dir(str(tmp_path / 'new'), None, False) is None
    _touch(str(tmp_path / 'notes.txt'))
    assert check_work_dir(str(tmp_path), None, False) is None


def test_checkpoints_of_another_run_need_resume_or_overwrite(tmp_path):
    work = str(tmp_path)
    _touch(osp.join(work, 'epoch_1.pth'))
    _touch(osp.join(work, 'last_checkpoint'), osp.join(work, 'epoch_1.pth'))
    _touch(osp.join(work, 'notes.txt'))
    with pytest.raises(WorkDirError, match='--resume.*--overwrite'):
        check_work_dir(work, None, False)
    assert check_work_dir(work, None, True) is None
    assert check_work_dir(work, 'auto', False) == osp.join(work,
                                                           'epoch_1.pth')
    removed = clear_checkpoints(work)
    assert sorted(map(osp.basename, removed)) == ['epoch_1.pth',
                                                  'last_checkpoint']
    assert os.listdir(work) == ['notes.txt']


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(WorkDirError, match='nothing to resume from'):
        check_work_dir(str(tmp_path), 'auto', False)
    with pytest.raises(WorkDirError, match='no such checkpoint'):
        check_work_dir(str(tmp_path), str(tmp_path / 'x.pth'), False)
    with pytest.raises(WorkDirError, match='exclude each other'):
        check_work_dir(str(tmp_path), 'auto', True)
    train = _load_tool('train')
    with pytest.raises(SystemExit, match='nothing to resume from'):
        train.main([PAPER, '--resume', '--work-dir', str(tmp_path)])


def _checkpoint(path, epoch):
    torch.save({'meta': {'epoch': epoch, 'iter': 10 * epoch},
                'state_dict': {'w': torch.zeros(2)}}, path)
    return path


def test_resume_does_not_need_pretrained_weights(tmp_path):
    ckpt = _checkpoint(str(tmp_path / 'epoch_3.pth'), 3)
    args = _load_tool('train').parse_args(
        [PAPER, '--resume', ckpt, '--work-dir', str(tmp_path)])
    cfg = prepare_cfg(args, 'train')
    assert cfg.resume and cfg.load_from == ckpt
    assert cfg.model.s2_encoder.init_cfg is None
    fresh = prepare_cfg(_load_tool('train').parse_args(
        [PAPER, '--work-dir', str(tmp_path / 'other')]), 'train')
    assert fresh.model.s2_encoder.init_cfg.type == 'AgriFM'


def test_resuming_a_finished_run_says_how_to_train_longer(tmp_path,
                                                          capsys):
    ckpt = _checkpoint(str(tmp_path / 'epoch_100.pth'), 100)
    train = _load_tool('train')
    # nothing failed (a requeued job that had finished): status 0
    assert train.main([PAPER, '--resume', ckpt, '--work-dir',
                       str(tmp_path)]) is None
    assert capsys.readouterr().err.strip() == (
        f'nothing to do: --resume {ckpt}: that run ended at epoch 100 and '
        'max_epochs is 100: nothing is left to train. To train longer, '
        f'start a new run from its weights with a longer schedule: python '
        f'tools/train.py {PAPER} --work-dir NEW_DIR --cfg-options '
        f'load_from={ckpt} max_epochs=N (resuming with a larger max_epochs '
        'would run the finished learning-rate schedule past its end)')
    # epochs left: fine; the advised fresh run needs no AgriFM file
    prepare_cfg(train.parse_args([PAPER, '--resume', ckpt, '--work-dir',
                                  str(tmp_path), '--cfg-options',
                                  'max_epochs=101']), 'train')
    fresh = prepare_cfg(train.parse_args(
        [PAPER, '--work-dir', str(tmp_path / 'longer'), '--cfg-options',
         f'load_from={ckpt}', 'max_epochs=150']), 'train')
    assert not fresh.resume and fresh.load_from == ckpt
    assert fresh.model.s2_encoder.init_cfg is None
    # a file that is no checkpoint is refused before the run
    _touch(str(tmp_path / 'empty.pth'))
    with pytest.raises(WorkDirError, match='empty.pth'):
        prepare_cfg(train.parse_args([PAPER, '--resume', str(
            tmp_path / 'empty.pth'), '--work-dir', str(tmp_path)]), 'train')


def test_drop_pretrained_init_keeps_other_initialisers():
    node = dict(a=dict(init_cfg=[dict(type='AgriFM', checkpoint='x'),
                                 dict(type='Normal', std=0.1)]),
                b=[dict(init_cfg=dict(type='Pretrained', checkpoint='y'))])
    assert drop_pretrained_init(node) == 2
    assert node['a']['init_cfg'] == [dict(type='Normal', std=0.1)]
    assert node['b'][0]['init_cfg'] is None
