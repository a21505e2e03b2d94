"""Shrink the demo config to a model that trains in seconds on a CPU.

Used by the test suite and by ``tools/misc/kill_resume_campaign.py``, which
need real training runs (checkpoints, validation, resume) of the paper's
architecture at a width where an epoch of a few 96 px tiles takes seconds.
"""
from mmengine.config import Config

from h2crop.constants import SPLITS


def shrink_to_tiny(cfg: Config) -> Config:
    """Make ``cfg`` (the demo config or a child) tiny, in place.

    Batch size 2 without worker processes; S2 encoder of width 8 with one
    block per stage; EnMAP encoder of width 16 / 4 channels; a two-iteration
    warm-up then cosine; validation, checkpoints and log lines every epoch /
    iteration. The experiment's choices are left to the caller.

    Args:
        cfg: A loaded config with the demo's model and dataloaders.

    Returns:
        ``cfg`` itself.
    """
    for split in SPLITS:
        loader = cfg[f'{split}_dataloader']
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
    return cfg
