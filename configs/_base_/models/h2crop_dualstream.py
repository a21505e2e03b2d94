# The paper's dual-stream model (docs/design.md, model): Video-Swin S2 encoder initialised
# from AgriFM, EnMAP spectral-spatial encoder, fusion decoder and four
# cascaded level heads. Inputs (modalities), window (num_frames), levels,
# taxonomy, the band statistics and the EnMAP encoder's presence and img_size
# are derived from the experiment's top-level choices when the run is built
# (h2crop.engine.experiment.resolve_experiment); channel counts (skips, fused
# feature, head inputs, classes) are derived in code from them.
model = dict(
    type='H2CropSegmentor',
    data_preprocessor=dict(type='H2CropDataPreprocessor',
                           cutmix=dict(prob=0.5, ratio_range=(0.5, 1.0))),
    s2_encoder=dict(
        type='S2TemporalSwin',
        in_channels=10,
        embed_dims=128,
        patch_size=(2, 4, 4),
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        window_size=(8, 7, 7),
        mlp_ratio=4.,
        qkv_bias=True,
        drop_path_rate=0.2,
        with_cp=False,
        init_cfg=dict(type='AgriFM', checkpoint='checkpoints/AgriFM.pth',
                      patch_kernel_policy='reinit')),
    # Used when 'enmap' is a modality (removed otherwise).
    enmap_encoder=dict(
        type='EnMAPSpectralSpatialEncoder',
        spatial_vit=dict(embed_dims=768, num_heads=12, num_layers=6),
        spectral_vit=dict(pool_size=4, num_heads=8, num_layers=6),
        out_channels=128),
    neck=dict(type='FusionDecoder', norm_cfg=dict(type='BN')),
    head=dict(type='CascadeHeads'))
