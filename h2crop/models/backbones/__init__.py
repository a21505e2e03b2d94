"""Encoders (backbones) of h2crop."""
from .swin3d import S2TemporalSwin

__all__ = ['S2TemporalSwin']
