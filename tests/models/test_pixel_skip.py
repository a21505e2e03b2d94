"""Tests of the opt-in full-resolution pixel skip (PixelSkip)."""
import pytest
import torch

from h2crop.constants import ENMAP, ENMAP_BANDS, PRIOR, S2, S2_BANDS
from h2crop.models import PixelSkip

from .tiny_dualstream import TILE, build_tiny, make_batch


def test_pixel_skip_shapes_and_cell_alignment():
    skip = PixelSkip(num_frames=3, embed_dims=5, enmap_embed_dims=4).eval()
    s2 = torch.randn(2, 3, S2_BANDS, 12, 12)
    enmap = torch.randn(2, ENMAP_BANDS, 4, 4)
    out = skip(s2, enmap)
    assert out.shape == (2, skip.out_channels, 12, 12) and \
        skip.out_channels == 9
    # the EnMAP part is constant over each 30 m cell's 3 x 3 S2 pixels
    hs = out[:, 5:]
    assert torch.equal(hs[..., 0:3, 0:3],
                       hs[..., 0:1, 0:1].expand(-1, -1, 3, 3))
    # and changing one cell changes exactly its 3 x 3 pixels
    enmap2 = enmap.clone()
    enmap2[:, :, 1, 2] += 3
    changed = (skip(s2, enmap2)[:, 5:] != hs).any(1)  # (B, H, W)
    assert changed[:, 3:6, 6:9].all()
    assert changed.sum() == 2 * 9
    # the S2 part is per pixel: one pixel's months reach only that pixel
    s2b = s2.clone()
    s2b[:, :, :, 7, 4] += 2
    moved = (skip(s2b, enmap)[:, :5] != out[:, :5]).any(1)
    assert moved[:, 7, 4].all() and moved.sum() == 2


def test_pixel_skip_refuses_mismatch():
    skip = PixelSkip(num_frames=2, enmap_embed_dims=None)
    with pytest.raises(ValueError, match='enmap is given'):
        skip(torch.randn(1, 2, S2_BANDS, 6, 6), torch.randn(1, 218, 2, 2))
    skip = PixelSkip(num_frames=2)
    with pytest.raises(ValueError, match='does not cover'):
        skip(torch.randn(1, 2, S2_BANDS, 6, 6), torch.randn(1, 218, 3, 3))
    with pytest.raises(ValueError, match='embed_dims'):
        PixelSkip(num_frames=2, embed_dims=0)


@pytest.mark.parametrize('modalities', [(S2, ), (S2, ENMAP, PRIOR)])
def test_segmentor_with_pixel_skip_trains_every_parameter(modalities):
    torch.manual_seed(0)
    model = build_tiny(modalities, num_frames=4,
                       pixel_skip=dict(embed_dims=6, enmap_embed_dims=5))
    plain = build_tiny(modalities, num_frames=4)
    extra = 6 + (5 if ENMAP in modalities else 0)
    assert model.head.in_channels == plain.head.in_channels + extra
    assert (model.pixel_skip.enmap_mlp is None) == (ENMAP not in modalities)
    inputs, samples = make_batch(modalities, model.levels, 4)
    losses = model(inputs, samples, mode='loss')
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    model.eval()
    out = model(inputs, samples, mode='predict')
    assert out[0].pred_sem_seg.data.shape[-2:] == (TILE, TILE)


def test_segmentor_pixel_skip_num_frames_is_derived():
    with pytest.raises(ValueError, match='pixel_skip.num_frames'):
        build_tiny((S2, ), num_frames=4,
                   pixel_skip=dict(num_frames=6))
