"""Segmentors of h2crop."""
from .h2crop_segmentor import H2CropSegmentor

__all__ = ['H2CropSegmentor']
