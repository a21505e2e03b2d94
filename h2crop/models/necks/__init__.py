"""Necks (decoders) of h2crop."""
from .fusion_decoder import FusionDecoder

__all__ = ['FusionDecoder']
