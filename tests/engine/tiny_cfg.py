"""A tiny, CPU-fast version of the demo config for Runner tests."""
import os.path as osp

from mmengine.config import Config

from h2crop.engine.experiment import resolve_experiment

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
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.batch_size = 2
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.model.s2_encoder.update(embed_dims=8, depths=(1, 1, 1, 1),
                                num_heads=(1, 1, 2, 2))
    cfg.model.enmap_encoder.update(
        spatial_vit=dict(embed_dims=16, num_heads=2, num_layers=1,
                         out_channels=4),
        spectral_vit=dict(pool_size=8, num_heads=2, num_layers=1,
                          out_channels=4),
        out_channels=8)
    cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=2),
        dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=0,
             convert_to_iter_based=True)
    ]
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.custom_hooks = []
    cfg.log_level = 'WARNING'
    return resolve_experiment(cfg) if resolve else cfg
