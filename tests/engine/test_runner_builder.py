"""Command-line plumbing of tools/test.py (h2crop.engine.runner_builder)."""
import argparse

import torch

from h2crop.engine.runner_builder import prepare_cfg

from .tiny_cfg import tiny_runner_cfg


def test_test_metrics_go_to_the_given_work_dir(tiny_dataset_96, tmp_path):
    # a config dumped by a training run names that run's folder
    cfg = tiny_runner_cfg(tiny_dataset_96, str(tmp_path / 'train_run'))
    cfg.test_evaluator['output_dir'] = str(tmp_path / 'train_run')
    path = str(tmp_path / 'dumped.py')
    cfg.dump(path)
    ckpt = str(tmp_path / 'c.pth')
    torch.save({'state_dict': {}}, ckpt)  # no experiment record: unchecked
    args = argparse.Namespace(config=path, checkpoint=ckpt,
                              work_dir=str(tmp_path / 'new'),
                              launcher='none', cfg_options=None, out=None,
                              show_dir=None)
    out = prepare_cfg(args, 'test')
    assert out.test_evaluator['output_dir'] == str(tmp_path / 'new')
    # without --work-dir the config's own folder is kept
    args.work_dir = None
    kept = prepare_cfg(args, 'test').test_evaluator
    assert kept['output_dir'] == str(tmp_path / 'train_run')
