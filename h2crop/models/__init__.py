"""h2crop.models: encoders, decoder, heads, segmentor, preprocessor, weights.

Importing this package registers every model component in
``h2crop.registry.MODELS`` (and the AgriFM initializer in
``WEIGHT_INITIALIZERS``).
"""
from . import weights
from .backbones import EnMAPSpectralSpatialEncoder, S2TemporalSwin
from .data_preprocessor import H2CropDataPreprocessor
from .heads import CascadeHeads
from .necks import FusionDecoder, PixelSkip
from .pixel_mlp import PixelMLP
from .segmentors import H2CropSegmentor
from .weights.original import (
                              convert_original_state_dict,
                              load_original_checkpoint,
                              to_original_state_dict,
)

__all__ = [
    'S2TemporalSwin', 'EnMAPSpectralSpatialEncoder', 'H2CropDataPreprocessor',
    'FusionDecoder', 'PixelSkip', 'CascadeHeads', 'PixelMLP',
    'H2CropSegmentor', 'weights',
    'convert_original_state_dict', 'to_original_state_dict',
    'load_original_checkpoint'
]
