"""A tiny, CPU-fast version of the demo config for Runner tests."""
import os.path as osp

from mmengine.config import Config

from h2crop.engine.experiment import resolve_experiment
from h2crop.utils.tiny import shrink_to_tiny

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo', 'h2crop_demo_s2_h_p.py')


def tiny_runner_cfg(data_root: str, work_dir: str, max_epochs: int = 1,
                    num_frames: int = 6, resolve: bool = True) -> Config:
    """Demo config shrunk to a few seconds per epoch on 96 px tiles.

    The experiment's choices are set at the top level (as a user would);
    with ``resolve`` the result is resolved like tools/train.py does.
    """
    cfg = Config.fromfile(DEMO)
    cfg.data_root = data_root
    cfg.end_month = num_frames
    cfg.max_epochs = max_epochs
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    shrink_to_tiny(cfg)
    cfg.custom_hooks = []
    cfg.log_level = 'WARNING'
    return resolve_experiment(cfg) if resolve else cfg
