"""Every config loads, uses only the project's names, and builds its model."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from h2crop.constants import ENMAP_SCALE, LEVELS, MODALITIES, MONTH_WINDOWS
from h2crop.engine.experiment import resolve_experiment
from h2crop.engine.option_check import check_config_keys
from h2crop.registry import MODELS
from h2crop.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '[!_]*', '*.py')))
PAPER = [c for c in CONFIGS
         if '/demo/' not in c and '/any_window/' not in c]

register_all_modules(init_default_scope=False)


def test_the_papers_twenty_configs_exist():
    names = {osp.join(*c.split('/')[1:]) for c in PAPER}
    expected = {f'hyper_benefits/crops_S2{v}_jun.py'
                for v in ('', '_H', '_P', '_H_P')}
    expected |= {f'temporal_exp/crops_S2{v}_{w}.py'
                 for v in ('', '_H', '_P', '_H_P')
                 for w in ('Aug', 'Oct', 'Dec')}
    expected |= {f'independent_heads/level{k}_crops_S2_jun.py'
                 for k in range(1, 5)}
    assert names == expected


@pytest.mark.parametrize('config', CONFIGS)
def test_config_is_consistent(config):
    raw = Config.fromfile(osp.join(REPO, config))
    check_config_keys(raw, source=config)  # every key is read by something
    cfg = resolve_experiment(raw)
    check_config_keys(cfg, source=config)
    model = cfg.model
    name = osp.basename(config)
    assert set(model.modalities) <= set(MODALITIES)
    assert set(model.levels) <= set(LEVELS)
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert tuple(ds.modalities) == tuple(model.modalities), split
        assert ds.end_month == model.num_frames, split
        assert tuple(ds.levels) == tuple(model.levels), split
    for ev in (cfg.val_evaluator, cfg.test_evaluator):
        assert tuple(ev.levels) == tuple(model.levels)
    assert ('enmap' in model.modalities) == (model.enmap_encoder is not None)
    if model.enmap_encoder is not None:
        # built for the training window: the tile or its crops
        assert model.enmap_encoder.img_size * ENMAP_SCALE == (
            cfg.get('train_crop_size') or cfg.tile_size)
    for ev in (cfg.val_evaluator, cfg.test_evaluator):
        assert ev.taxonomy == model.taxonomy
    assert cfg.param_scheduler[-1].end == cfg.train_cfg.max_epochs
    if config in PAPER:
        # file name <-> settings, as in the original's grid
        window = [w for w in MONTH_WINDOWS if f'_{w}.py' in name]
        assert len(window) == 1 and model.num_frames == MONTH_WINDOWS[
            window[0]]
        if name.startswith('level'):
            assert model.levels == (f'level{name[5]}', )
            assert set(model.modalities) == set(MODALITIES)
        else:
            assert ('_H' in name) == ('enmap' in model.modalities)
            assert ('_P' in name) == ('prior' in model.modalities)
            assert model.levels == LEVELS
        assert cfg.train_dataloader.batch_size == 4
        assert cfg.optim_wrapper.optimizer.lr == 6e-5
        assert cfg.train_cfg.max_epochs == 100
        assert cfg.default_hooks.checkpoint.save_best == 'mFscore'
        assert cfg.model.s2_encoder.init_cfg.checkpoint == \
            'checkpoints/AgriFM.pth'
    assert not cfg.resume and cfg.load_from is None


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_runs_at_reduced_size(config):
    """Build at reduced width (same structure) and run one loss step."""
    cfg = resolve_experiment(Config.fromfile(osp.join(REPO, config)))
    model_cfg = cfg.model
    model_cfg.taxonomy = None
    model_cfg.s2_encoder.update(embed_dims=8, depths=(1, 1, 1, 1),
                                num_heads=(1, 1, 2, 2), window_size=(2, 3, 3),
                                init_cfg=None)
    tile = cfg.get('train_crop_size') or 96  # the window it is built for
    if model_cfg.enmap_encoder is not None:
        model_cfg.enmap_encoder.update(
            img_size=tile // 3,
            spatial_vit=dict(embed_dims=16, num_heads=2, num_layers=1,
                             out_channels=4),
            spectral_vit=dict(pool_size=8, num_heads=2, num_layers=1,
                              out_channels=4),
            out_channels=8)
    model = MODELS.build(model_cfg)
    from h2crop.utils.model_analysis import dummy_data_samples, dummy_inputs
    inputs = dummy_inputs(model_cfg, tile_size=tile, batch=1)
    samples = dummy_data_samples(model_cfg, tile_size=tile, batch=1)
    losses = model(inputs, samples, mode='loss')
    assert set(k for k in losses if k.startswith('loss_')) == {
        f'loss_{lv}' for lv in model_cfg.levels}
    total = sum(v for k, v in losses.items() if k.startswith('loss_'))
    assert torch.isfinite(total)
