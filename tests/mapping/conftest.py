"""A tiny model (config file + checkpoint) for the mapping tests."""
import os.path as osp

import pytest
import torch

from ..engine.tiny_cfg import tiny_runner_cfg


@pytest.fixture(scope='session')
def tiny_model_files(tiny_dataset_96, tmp_path_factory):
    """``(config path, checkpoint path, data root)`` of a tiny S2+H+P model.

    The weights are a random initialisation saved as a training checkpoint
    would be (``state_dict`` + ``meta``).
    """
    from h2crop.apis import init_model
    folder = tmp_path_factory.mktemp('tiny_model')
    cfg = tiny_runner_cfg(tiny_dataset_96, str(folder))
    cfg_path = osp.join(str(folder), 'tiny.py')
    cfg.dump(cfg_path)
    torch.manual_seed(0)
    model = init_model(cfg_path)
    ckpt = osp.join(str(folder), 'tiny.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'epoch': 1}},
               ckpt)
    return cfg_path, ckpt, tiny_dataset_96
