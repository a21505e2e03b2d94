"""Tiny model configs and synthetic batches shared by the model tests."""
from typing import Dict, List, Sequence, Tuple

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from h2crop.constants import ENMAP, ENMAP_SCALE, LEVELS, PRIOR, S2
from h2crop.models import H2CropSegmentor
from h2crop.taxonomy import load_taxonomy

#: S2 tile side of the tiny tests (divisible by 32 and by 3).
TILE = 96
ENMAP_SIDE = TILE // ENMAP_SCALE

TINY_S2 = dict(type='S2TemporalSwin', embed_dims=8, depths=(1, 1, 1, 1),
               num_heads=(1, 1, 2, 2), window_size=(2, 3, 3),
               drop_path_rate=0.)
TINY_ENMAP = dict(type='EnMAPSpectralSpatialEncoder', img_size=ENMAP_SIDE,
                  spatial_vit=dict(embed_dims=16, num_heads=2, num_layers=1,
                                   out_channels=4),
                  spectral_vit=dict(pool_size=8, num_heads=2, num_layers=1,
                                    out_channels=4),
                  out_channels=8)

#: (name, modalities) of the paper's four input variants.
VARIANTS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('S2', (S2, )),
    ('S2_H', (S2, ENMAP)),
    ('S2_P', (S2, PRIOR)),
    ('S2_H_P', (S2, ENMAP, PRIOR)),
)


def build_tiny(modalities: Sequence[str] = (S2, ENMAP, PRIOR),
               levels: Sequence[str] = LEVELS,
               num_frames: int = 6,
               **kwargs) -> H2CropSegmentor:
    """A tiny segmentor (no preprocessor) for CPU tests."""
    return H2CropSegmentor(
        s2_encoder=dict(TINY_S2),
        enmap_encoder=dict(TINY_ENMAP) if ENMAP in modalities else None,
        neck=dict(type='FusionDecoder'),
        head=dict(type='CascadeHeads'),
        modalities=modalities,
        levels=levels,
        num_frames=num_frames,
        **kwargs)


def make_batch(modalities: Sequence[str], levels: Sequence[str],
               num_frames: int, batch: int = 2, seed: int = 0
               ) -> Tuple[Dict[str, torch.Tensor], List[SegDataSample]]:
    """Preprocessed-looking inputs (float S2/EnMAP, int64 priors) + samples."""
    gen = torch.Generator().manual_seed(seed)
    num_classes = load_taxonomy(None).num_classes
    counts = [num_classes[LEVELS.index(lv)] for lv in levels]

    def ids() -> torch.Tensor:  # (B, L, H, W)
        return torch.stack([
            torch.randint(0, n, (batch, TILE, TILE), generator=gen)
            for n in counts], dim=1)

    inputs = {S2: torch.randn(batch, num_frames, 10, TILE, TILE,
                              generator=gen)}
    if ENMAP in modalities:
        inputs[ENMAP] = torch.randn(batch, 218, ENMAP_SIDE, ENMAP_SIDE,
                                    generator=gen)
    if PRIOR in modalities:
        inputs[PRIOR] = ids()
    gt = ids()
    samples = []
    for i in range(batch):
        sample = SegDataSample(metainfo=dict(levels=tuple(levels),
                                             sample_id=f's{i}'))
        sample.gt_sem_seg = PixelData(data=gt[i])
        samples.append(sample)
    return inputs, samples
