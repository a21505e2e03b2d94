"""Tests of EnMAPSpectralSpatialEncoder."""
import math

import pytest
import torch
from timm.models.vision_transformer import Block

from h2crop.models import EnMAPSpectralSpatialEncoder
from h2crop.models.backbones.enmap_encoder import sinusoid_position_encoding
from h2crop.registry import MODELS

from .tiny_dualstream import TINY_ENMAP


def test_sinusoid_matches_formula():
    table = sinusoid_position_encoding(7, 6)
    assert table.shape == (7, 6) and table.dtype == torch.float32
    for p in (0, 3, 6):
        for i in range(3):
            angle = p / 10000**(2 * i / 6)
            assert table[p, 2 * i].item() == pytest.approx(math.sin(angle))
            assert table[p, 2 * i + 1].item() == pytest.approx(
                math.cos(angle))


def test_shapes_per_stage():
    enc = MODELS.build(dict(TINY_ENMAP)).eval()
    x = torch.randn(2, 218, 32, 32)
    with torch.no_grad():
        spatial = enc.spatial_vit(x)
        spectral = enc.spectral_vit(x)
        out = enc(x)
    assert spatial.shape == (2, 4, 96, 96)
    assert spectral.shape == (2, 4, 96, 96)
    assert out.shape == (2, enc.out_channels, 96, 96) == (2, 8, 96, 96)
    # spectral token width derived from the grid and pool: (32 / 8)^2
    assert enc.spectral_vit.embed_dims == 16
    assert enc.spectral_vit.pos_embed.shape == (218, 16)
    assert enc.spatial_vit.pos_embed.shape == (32 * 32, 16)


def test_no_dead_parameters_and_fused_attention():
    enc = MODELS.build(dict(TINY_ENMAP)).train()
    blocks = [m for m in enc.modules() if isinstance(m, Block)]
    assert len(blocks) == 2 and all(b.attn.fused_attn for b in blocks)
    # position tables are buffers outside the state dict, not parameters
    assert not any('pos_embed' in k for k in enc.state_dict())
    enc(torch.randn(2, 218, 32, 32)).square().mean().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, f'{name} gets no gradient'
        assert p.grad.abs().sum() > 0, f'{name} has a zero gradient'


def test_full_size_parameter_count():
    with torch.device('meta'):
        enc = EnMAPSpectralSpatialEncoder()
    n = sum(p.numel() for p in enc.parameters())
    assert round(n / 1e6, 1) == 59.2  # 176.2 M (S2+H+P jun) - 117.1 M


def test_bad_input_shape_names_expectation():
    enc = MODELS.build(dict(TINY_ENMAP))
    with pytest.raises(ValueError, match=r'\(B, 218, 32, 32\)'):
        enc(torch.randn(1, 218, 30, 30))


def test_bad_config():
    with pytest.raises(TypeError, match='unknown keys'):
        EnMAPSpectralSpatialEncoder(img_size=32, spatial_vit=dict(depth=2))
    with pytest.raises(ValueError, match='pool_size'):
        EnMAPSpectralSpatialEncoder(img_size=30)
