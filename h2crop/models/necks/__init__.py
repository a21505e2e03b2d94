"""Necks (decoders) of h2crop."""
from .fusion_decoder import FusionDecoder
from .pixel_skip import PixelSkip

__all__ = ['FusionDecoder', 'PixelSkip']
