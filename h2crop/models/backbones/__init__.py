"""Encoders (backbones) of h2crop."""
from .enmap_encoder import EnMAPSpectralSpatialEncoder
from .swin3d import S2TemporalSwin

__all__ = ['S2TemporalSwin', 'EnMAPSpectralSpatialEncoder']
