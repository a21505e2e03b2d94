"""TensorBoard as an optional extra: refused clearly, or writes events."""
import glob
import importlib.util
import os.path as osp

import pytest

from h2crop.engine.experiment import ExperimentConfigError
from h2crop.engine.runner_builder import TENSORBOARD_BACKEND, prepare_cfg

from .test_runner import _load_tool
from .tiny_cfg import DEMO

HAVE_TB = importlib.util.find_spec('tensorboard') is not None


def _args(tmp_path):
    return _load_tool('train').parse_args(
        [DEMO, '--tensorboard', '--work-dir', str(tmp_path)])


@pytest.mark.skipif(HAVE_TB, reason='tensorboard is installed')
def test_flag_without_the_extra_names_the_install_command(tmp_path):
    with pytest.raises(ExperimentConfigError, match=r'\.\[tensorboard\]'):
        prepare_cfg(_args(tmp_path), 'train')


@pytest.mark.skipif(not HAVE_TB, reason="the optional tensorboard package "
                    "is not installed (pip install '.[tensorboard]')")
def test_flag_writes_tensorboard_events(tmp_path):
    from mmengine.visualization import Visualizer
    cfg = prepare_cfg(_args(tmp_path), 'train')
    types = [b['type'] for b in cfg.visualizer.vis_backends]
    assert types == ['LocalVisBackend', TENSORBOARD_BACKEND]
    vis = Visualizer.get_instance(
        'h2crop_tb_test', vis_backends=cfg.visualizer.vis_backends,
        save_dir=str(tmp_path / 'vis'))
    vis.add_scalars({'loss': 1.0, 'mFscore': 10.0}, step=1)
    vis.close()
    events = glob.glob(osp.join(str(tmp_path / 'vis'), '**',
                                'events.out.tfevents.*'), recursive=True)
    assert events and osp.getsize(events[0]) > 0
