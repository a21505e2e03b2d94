"""h2crop.datasets: H2Crop tiles, transforms, synthetic data and checks."""
from .checker import Problem, check_dataset, check_tile
from .h2crop_dataset import H2CropDataset, read_split_list, resolve_ann_file
from .h5io import H2CropDataError, read_tile
from .synthetic import make_synthetic_dataset, synthetic_taxonomy
from .transforms import H2CropRandomFlipRotate, LoadH2CropH5, PackH2CropInputs

__all__ = [
    'H2CropDataset', 'LoadH2CropH5', 'H2CropRandomFlipRotate',
    'PackH2CropInputs', 'H2CropDataError', 'read_tile', 'read_split_list',
    'resolve_ann_file', 'make_synthetic_dataset', 'synthetic_taxonomy',
    'check_dataset', 'check_tile', 'Problem'
]
