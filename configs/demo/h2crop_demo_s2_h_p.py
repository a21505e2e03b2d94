# CPU demo: the S2 + EnMAP + prior model of the paper at small width, on the
# synthetic tiles of `make demo` (96 px, 12 months). Trains in a few minutes
# on 2 cores; see tools/demo.py. The choices below reach the dataloaders,
# model, evaluators and schedule when the run is built (the taxonomy is the
# dataset's <data_root>/cascade_labels.csv).
_base_ = ['../hyper_benefits/crops_S2_H_P_jun.py']
data_root = 'data/demo'
end_month = 12
tile_size = 96
max_epochs = 15

_loader = dict(batch_size=4, num_workers=1, persistent_workers=True)
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader

model = dict(
    s2_encoder=dict(embed_dims=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8),
                    window_size=(2, 3, 3), drop_path_rate=0.1, init_cfg=None),
    enmap_encoder=dict(
        spatial_vit=dict(embed_dims=64, num_heads=2, num_layers=1,
                         out_channels=32),
        spectral_vit=dict(pool_size=4, num_heads=2, num_layers=1,
                          out_channels=32),
        out_channels=32),
    # Opt-in improvement (off in the paper configs): each pixel's own S2
    # months and EnMAP cell spectrum reach the heads at full resolution
    # (h2crop/models/necks/pixel_skip.py). Measured in README "Ablations":
    # without it the demo-sized model underfits and the EnMAP-only classes
    # stay near chance.
    pixel_skip=dict(embed_dims=16, enmap_embed_dims=16))

optim_wrapper = dict(optimizer=dict(lr=2e-3, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=40),
    dict(type='CosineAnnealingLR', eta_min=2e-5, by_epoch=True, begin=0,
         convert_to_iter_based=True),
]
train_cfg = dict(val_interval=5)
default_hooks = dict(logger=dict(interval=100),
                     checkpoint=dict(interval=5, max_keep_ckpts=1))
custom_hooks = [dict(type='ProgressBarHook')]
env_cfg = dict(cudnn_benchmark=False)
