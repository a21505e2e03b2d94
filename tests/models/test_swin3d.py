"""Tests of the S2 temporal Video-Swin encoder."""
import json
import math
import os.path as osp

import pytest
import torch
from einops import rearrange

from h2crop.models.backbones.swin3d import (
    PatchMerging3D,
    S2TemporalSwin,
    _shift_mask,
    derive_downsample_steps,
    effective_window,
    relative_position_index,
)
from h2crop.registry import MODELS

TINY = dict(in_channels=10, embed_dims=8, depths=(2, 2, 2, 2),
            num_heads=(1, 2, 2, 4), window_size=(2, 3, 3),
            drop_path_rate=0.1)
FULL_PARAMS = 87_667_400


def _tiny(**kwargs) -> S2TemporalSwin:
    cfg = dict(TINY)
    cfg.update(kwargs)
    torch.manual_seed(0)
    model = S2TemporalSwin(**cfg)
    model.init_weights()
    return model


@pytest.mark.parametrize('t,steps', [
    (6, ((2, 2, 2), (2, 2, 2), (1, 2, 2))),
    (8, ((2, 2, 2), (2, 2, 2), (1, 2, 2))),
    (10, ((2, 2, 2), (2, 2, 2), (2, 2, 2))),
    (12, ((2, 2, 2), (2, 2, 2), (2, 2, 2))),
])
def test_derived_downsample_steps_match_paper(t, steps):
    assert derive_downsample_steps(t, 2, 3) == steps
    assert S2TemporalSwin(num_frames=t, **TINY).downsample_steps == steps


@pytest.mark.parametrize('t,hw', [(6, 64), (10, 64), (5, 62), (12, 40)])
def test_shapes_per_stage(t, hw):
    model = _tiny(num_frames=t).eval()
    x = torch.randn(2, t, 10, hw, hw)
    with torch.no_grad():
        out = model(x)
    feats = out['features_list']
    assert len(feats) == 4
    size = math.ceil(hw / 4)
    for i, f in enumerate(feats):
        assert f.shape == (2, model.feature_channels[i], size, size), i
        size = math.ceil(size / 2)
    last = feats[3].shape
    assert out['encoder_features'].shape == last
    assert model.encoder_channels == model.feature_channels[-1]


def test_paper_feature_channels():
    # docs/design.md, fusion decoder: skips (features_list 2, 1, 0) of
    # Jun / Aug / Oct / Dec.
    expect = {6: (384, 512, 512, 1024), 8: (512, 512, 512, 1024),
              10: (640, 768, 1024, 1024), 12: (768, 768, 1024, 1024)}
    for t, channels in expect.items():
        with torch.device('meta'):
            model = S2TemporalSwin(num_frames=t)
        assert model.feature_channels == channels, t


def test_flatten_order_is_c_times_d_plus_d():
    model = _tiny(num_frames=6).eval()
    x = torch.randn(1, 6, 10, 32, 32)
    with torch.no_grad():
        out = model(x)
        emb = model.patch_emd(rearrange(x, 'b t c h w -> b c t h w'))
    b, c, d, h, w = emb.shape
    flat = out['features_list'][0]
    assert torch.equal(flat[:, 3 * d + 1], emb[:, 3, 1])
    assert torch.equal(flat, emb.reshape(b, c * d, h, w))


def test_every_parameter_gets_a_gradient():
    model = _tiny(num_frames=6).train()
    out = model(torch.randn(2, 6, 10, 48, 48))
    loss = sum(f.square().mean() for f in out['features_list'])
    loss = loss + out['encoder_features'].square().mean()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


def test_activation_checkpointing_gives_same_gradients():
    x = torch.randn(1, 6, 10, 48, 48)
    grads = []
    for with_cp in (False, True):
        model = _tiny(num_frames=6, with_cp=with_cp,
                      drop_path_rate=0.).train()
        out = model(x)
        out['encoder_features'].sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name],
                                   rtol=1e-5, atol=1e-6, msg=name)


def test_state_dict_has_only_agrifm_keys_and_registry_build():
    model = MODELS.build(dict(type='S2TemporalSwin', num_frames=6, **TINY))
    keys = list(model.state_dict())
    assert not any('relative_position_index' in k for k in keys)
    assert keys[0] == 'patch_emd.proj.weight'
    assert 'backbone.layers.0.downsample.reduction.weight' in keys
    assert 'backbone.layers.3.downsample.norm.weight' not in keys
    assert 'backbone.norm.weight' in keys


def test_full_size_parameter_count():
    with torch.device('meta'):
        model = S2TemporalSwin()
    assert sum(p.numel() for p in model.parameters()) == FULL_PARAMS


def test_full_size_keys_match_reference_json(shared_reference):
    path = osp.join(shared_reference, 's2_encoder_full_keys.json')
    with open(path) as f:
        ref = json.load(f)
    ref = {k: tuple(v) for k, v in ref.items()
           if not k.endswith('relative_position_index')}
    with torch.device('meta'):
        model = S2TemporalSwin()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == ref
    assert sum(math.prod(s) for s in ref.values()) == FULL_PARAMS


def test_window_shrink_rule():
    assert effective_window((3, 24, 24), (2, 3, 3), (1, 1, 1)) == \
        ((2, 3, 3), (1, 1, 1))
    assert effective_window((1, 6, 6), (8, 7, 7), (4, 3, 3)) == \
        ((1, 6, 6), (0, 0, 0))
    assert effective_window((2, 12, 7), (2, 7, 7), (1, 3, 3)) == \
        ((2, 7, 7), (0, 3, 0))


def test_relative_position_index_modes():
    full = relative_position_index((2, 7, 7))
    assert full.shape == (98, 98)
    # Shrinking only the leading (temporal) axis: both modes agree.
    exact_d = relative_position_index((1, 7, 7), (2, 7, 7))
    assert torch.equal(exact_d, full[:49, :49])
    # Shrinking H/W: the original first-N slice differs from the geometry.
    exact_hw = relative_position_index((1, 6, 6), (2, 7, 7))
    assert not torch.equal(exact_hw, full[:36, :36])
    # Exact offsets: token (0,0,0) vs (0,1,0) -> same entry as in full window.
    assert exact_hw[0, 6] == full[0, 7]


def test_modes_differ_only_with_hw_shrink():
    x = torch.randn(1, 6, 10, 32, 32)
    outs = {}
    for mode in ('original', 'exact'):
        model = _tiny(num_frames=6, window_size=(2, 7, 7),
                      rel_pos_index_mode=mode).eval()
        with torch.no_grad():
            outs[mode] = model(x)
    # 32 px -> 8x8 tokens > 7 in stage 0 (no shrink), 4x4 in stage 1.
    torch.testing.assert_close(outs['original']['features_list'][1],
                               outs['exact']['features_list'][1])
    assert not torch.allclose(outs['original']['encoder_features'],
                              outs['exact']['encoder_features'])
    with pytest.raises(ValueError):
        _tiny(rel_pos_index_mode='bogus')


def _reference_mask(padded, window, shift):
    """Region labelling by slices, as in Video Swin's mask computation."""
    img = torch.zeros(padded)
    cnt = 0
    slices = [(slice(-w), slice(-w, -s), slice(-s, None))
              for w, s in zip(window, shift)]
    for d in slices[0]:
        for h in slices[1]:
            for w in slices[2]:
                img[d, h, w] = cnt
                cnt += 1
    win = rearrange(img, '(a x) (b y) (c z) -> (a b c) (x y z)',
                    x=window[0], y=window[1], z=window[2])
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, -100.0, 0.0)


@pytest.mark.parametrize('padded,window,shift', [
    ((4, 6, 6), (2, 3, 3), (1, 1, 1)),
    ((2, 14, 14), (2, 7, 7), (0, 3, 3)),
    ((8, 7, 14), (4, 7, 7), (2, 0, 3)),
])
def test_shift_mask_matches_slice_labelling(padded, window, shift):
    ours = _shift_mask(padded, window, shift, torch.device('cpu'))
    torch.testing.assert_close(ours, _reference_mask(padded, window, shift))


def test_patch_merging_means_temporal_phases():
    merge = PatchMerging3D(embed_dims=3, step=(2, 2, 2))
    merge.norm = torch.nn.Identity()
    merge.reduction = torch.nn.Identity()
    x = torch.randn(1, 3, 5, 4, 3)  # (B, D, H, W, C): D and H odd
    y = merge(x)
    assert y.shape == (1, 2, 3, 2, 12)
    xp = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, 1, 0, 1))
    for k, (hs, ws) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
        phase = y[..., 3 * k:3 * k + 3]
        want = (xp[:, 0::2, hs::2, ws::2] + xp[:, 1::2, hs::2, ws::2]) / 2
        torch.testing.assert_close(phase, want)
    # Odd D: the last merged frame is half the last input frame.
    torch.testing.assert_close(y[:, 1, 0, 0, :3], x[:, 2, 0, 0] / 2)


def test_patch_merging_without_temporal_step_keeps_depth():
    merge = PatchMerging3D(embed_dims=4, step=(1, 2, 2))
    assert merge(torch.randn(2, 3, 4, 4, 4)).shape == (2, 3, 2, 2, 8)


def test_bad_input_shape_is_reported():
    model = _tiny()
    with pytest.raises(ValueError, match='expects'):
        model(torch.randn(1, 10, 6, 32, 32))
