"""Tests of H2CropSegmentor: modes, derived channels, gradients."""
import pytest
import torch
from mmengine.optim import OptimWrapper

from h2crop.constants import ENMAP, LEVELS, PRIOR, S2
from h2crop.models import H2CropSegmentor
from h2crop.registry import MODELS

from .tiny_dualstream import TILE, TINY_S2, VARIANTS, build_tiny, make_batch

#: (modalities, levels, num_frames) whose every parameter must get a grad.
GRAD_CASES = (
    [(mods, LEVELS, 6) for _, mods in VARIANTS] +
    [((S2, ENMAP, PRIOR), (lv, ), 6) for lv in LEVELS] +
    [((S2, ), (lv, ), 6) for lv in ('level1', 'level4')] +
    [((S2, ), LEVELS, 10), ((S2, ENMAP, PRIOR), LEVELS, 10)])


def _assert_all_grads(model, tag):
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f'{tag}: {name} gets no gradient'
            assert torch.isfinite(p.grad).all(), f'{tag}: {name} non-finite'
            assert p.grad.abs().sum() > 0, f'{tag}: {name} zero gradient'


@pytest.mark.parametrize('modalities,levels,num_frames', GRAD_CASES)
def test_every_parameter_gets_a_gradient(modalities, levels, num_frames):
    torch.manual_seed(0)
    model = build_tiny(modalities, levels, num_frames).train()
    inputs, samples = make_batch(modalities, levels, num_frames)
    losses = model(inputs, samples, mode='loss')
    assert set(k for k in losses if k.startswith('loss_')) == {
        f'loss_{lv}' for lv in levels}
    sum(v for k, v in losses.items() if k.startswith('loss_')).backward()
    _assert_all_grads(model, f'{modalities} {levels} T={num_frames}')


@pytest.mark.parametrize('name,modalities', VARIANTS)
def test_tensor_and_predict_modes(name, modalities):
    model = build_tiny(modalities).eval()
    inputs, samples = make_batch(modalities, LEVELS, 6)
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
        preds = model(inputs, samples, mode='predict')
    assert list(logits) == list(LEVELS)
    assert [v.shape[1] for v in logits.values()] == [7, 37, 83, 102]
    assert all(v.shape == (2, v.shape[1], TILE, TILE)
               for v in logits.values())
    assert len(preds) == 2
    pred = preds[1].pred_sem_seg.data
    assert pred.shape == (4, TILE, TILE) and pred.dtype == torch.int64
    for k, lv in enumerate(LEVELS):
        assert torch.equal(pred[k], logits[lv][1].argmax(0))
    assert 'gt_sem_seg' in preds[0]
    assert ('prior_sem_seg' in preds[0]) == (PRIOR in modalities)
    if PRIOR in modalities:
        assert torch.equal(preds[0].prior_sem_seg.data, inputs[PRIOR][0])


def test_predict_without_samples_and_bad_mode():
    model = build_tiny((S2, ), ('level3', )).eval()
    inputs, _ = make_batch((S2, ), ('level3', ), 6)
    with torch.no_grad():
        preds = model(inputs, None, mode='predict')
    assert preds[0].pred_sem_seg.data.shape == (1, TILE, TILE)
    with pytest.raises(ValueError, match='mode must be'):
        model(inputs, mode='logits')


def test_channels_are_derived():
    model = build_tiny((S2, ENMAP, PRIOR))
    enc = model.s2_encoder
    assert model.neck.in_channels == enc.encoder_channels
    assert model.neck.skip_channels == tuple(enc.feature_channels[:3])
    assert model.neck.out_channels == model.neck.decoder_channels + 8
    assert model.head.in_channels == model.neck.out_channels
    f = model.neck.out_channels
    assert model.head.head_in_channels == (f + 7, f + 7 + 37, f + 37 + 83,
                                           f + 83 + 102)


def test_config_contradiction_and_modalities_errors():
    with pytest.raises(ValueError, match='contradicts'):
        H2CropSegmentor(s2_encoder=dict(TINY_S2),
                        neck=dict(type='FusionDecoder', in_channels=3),
                        head=dict(type='CascadeHeads'))
    with pytest.raises(ValueError, match='enmap_encoder'):
        H2CropSegmentor(s2_encoder=dict(TINY_S2),
                        neck=dict(type='FusionDecoder'),
                        head=dict(type='CascadeHeads'),
                        modalities=(S2, ENMAP))
    with pytest.raises(ValueError, match='is required'):
        build_tiny((ENMAP, ))


def test_month_window_and_missing_modality_errors():
    model = build_tiny((S2, ENMAP, PRIOR), num_frames=6)
    inputs, _ = make_batch((S2, ENMAP, PRIOR), LEVELS, 8)
    with pytest.raises(ValueError, match='T=6'):
        model(inputs, mode='tensor')
    inputs, _ = make_batch((S2, PRIOR), LEVELS, 6)
    with pytest.raises(KeyError, match='enmap'):
        model(inputs, mode='tensor')


def test_train_and_val_step_with_preprocessor():
    """Raw int16 / uint8 samples through H2CropDataPreprocessor."""
    model = build_tiny(
        (S2, ENMAP, PRIOR),
        data_preprocessor=dict(
            type='H2CropDataPreprocessor',
            mean={S2: [1000.] * 10, ENMAP: [500.] * 218},
            std={S2: [500.] * 10, ENMAP: [300.] * 218},
            cutmix=dict(prob=1.0, ratio_range=(0.5, 1.0))))
    inputs, samples = make_batch((S2, ENMAP, PRIOR), LEVELS, 6)
    for s in samples:
        s.gt_sem_seg.data = s.gt_sem_seg.data.to(torch.uint8)
    data = dict(inputs={
        S2: [(inputs[S2][i] * 500 + 1000).to(torch.int16) for i in range(2)],
        ENMAP: [(inputs[ENMAP][i] * 300 + 500).to(torch.int16)
                for i in range(2)],
        PRIOR: [inputs[PRIOR][i].to(torch.uint8) for i in range(2)]},
        data_samples=samples)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(data, optim)
    assert 'loss' in log_vars and torch.isfinite(log_vars['loss'])
    preds = model.val_step(data)
    assert preds[0].pred_sem_seg.data.shape == (4, TILE, TILE)


def test_registry_build_and_full_size_counts():
    def count(modalities, num_frames):
        cfg = dict(type='H2CropSegmentor',
                   s2_encoder=dict(type='S2TemporalSwin'),
                   neck=dict(type='FusionDecoder'),
                   head=dict(type='CascadeHeads'),
                   modalities=modalities, num_frames=num_frames)
        if ENMAP in modalities:
            cfg['enmap_encoder'] = dict(type='EnMAPSpectralSpatialEncoder')
        with torch.device('meta'):
            model = MODELS.build(cfg)
        return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)

    # the paper's figures without dead parameters (docs/design.md)
    assert count((S2, ), 6) == 115.0
    assert count((S2, ENMAP, PRIOR), 6) == 176.2
    assert count((S2, ENMAP, PRIOR), 10) == 182.7
