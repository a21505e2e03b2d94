"""Names and sizes shared by the data pipeline, the models, configs and tests.

This module is the single home of every H5 dataset name, modality key and
taxonomy level name used in the project. Nothing else spells them out.
"""
from typing import Dict, Tuple

# ---------------------------------------------------------------- H5 layout
#: Folder below the data root that holds one ``<sample_id>.h5`` per tile.
H5_DIR = 'h5_data'
#: File suffix of a tile.
H5_SUFFIX = '.h5'
#: Folder of split lists (one sample id per line) in a data root / checkout.
DATA_LISTS_DIR = 'data_lists'
#: Split names, in the order train, validation, test.
SPLITS: Tuple[str, ...] = ('train', 'val', 'test')
#: File name of the taxonomy that comes with a dataset (next to ``h5_data``).
TAXONOMY_FILE = 'cascade_labels.csv'
#: Accepted dataset names inside a tile, per content. The first spelling is
#: the one the authors' loader reads, the second the one of their README.
H5_S2_NAMES: Tuple[str, ...] = ('S2_data', 'S2')
H5_ENMAP_NAMES: Tuple[str, ...] = ('EnMAP_data', 'EnMAP')
H5_LABEL_NAMES: Tuple[str, ...] = ('label', )
H5_PRIOR_NAMES: Tuple[str, ...] = ('priors', 'prior')
#: Optional per-pixel parcel id of tiles converted from parcel vectors
#: (uint32 (H, W); 0 = no parcel). Parcels cut by tile edges keep their id.
H5_PARCEL_ID = 'parcel_id'
PARCEL_ID_DTYPE = 'uint32'
#: Tile attributes of the georeference: the CRS as WKT and the affine
#: transform of the S2 grid as 6 numbers (a, b, c, d, e, f, rasterio order).
H5_ATTR_CRS = 'crs_wkt'
H5_ATTR_TRANSFORM = 'transform'

# ---------------------------------------------------------------- modalities
#: Modality keys of ``inputs`` dictionaries (dataset -> preprocessor -> model).
S2 = 's2'
ENMAP = 'enmap'
PRIOR = 'prior'
MODALITIES: Tuple[str, ...] = (S2, ENMAP, PRIOR)
#: H5 dataset names per modality key.
H5_NAMES: Dict[str, Tuple[str, ...]] = {
    S2: H5_S2_NAMES,
    ENMAP: H5_ENMAP_NAMES,
    PRIOR: H5_PRIOR_NAMES,
}

# ---------------------------------------------------------------- sizes
NUM_MONTHS = 12
#: Sentinel-2 bands of the dataset's S2 cubes, in their order along the band
#: axis (docs/design.md#data-format): the four 10 m bands and the six 20 m
#: bands in wavelength order, B8A after B8; the 60 m bands B1, B9, B10 are
#: not used.
S2_BAND_NAMES: Tuple[str, ...] = ('B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8',
                                  'B8A', 'B11', 'B12')
S2_BANDS = len(S2_BAND_NAMES)
#: Digital numbers per unit of surface reflectance in the dataset's S2 cubes
#: (int16 reflectance x 10000, Sentinel-2 L2A's quantification, with the
#: BOA offset of processing baseline >= 04.00 removed).
S2_REFLECTANCE_SCALE = 10000
ENMAP_BANDS = 218
TILE_SIZE = 192
#: S2 pixels per EnMAP pixel along one axis (10 m vs 30 m).
ENMAP_SCALE = 3
#: Ground sampling distance (pixel size, metres) of the S2 grid the models
#: are trained on; EnMAP's follows from :data:`ENMAP_SCALE`.
S2_GSD = 10.0
ENMAP_GSD = S2_GSD * ENMAP_SCALE
S2_DTYPE = 'int16'
ENMAP_DTYPE = 'int16'
#: The EnMAP cube holds surface reflectance (0..1) times this, as int16
#: (docs/products.md#scaling).
ENMAP_REFLECTANCE_SCALE = 10000
LABEL_DTYPE = 'uint8'
PRIOR_DTYPE = 'uint8'
#: Paper month windows: name -> number of months from January.
MONTH_WINDOWS: Dict[str, int] = {'jun': 6, 'Aug': 8, 'Oct': 10, 'Dec': 12}

# ---------------------------------------------------------------- taxonomy
#: Level names, coarse to fine. Level k (1-based) is ``LEVELS[k - 1]``.
LEVELS: Tuple[str, ...] = ('level1', 'level2', 'level3', 'level4')
NUM_LEVELS = len(LEVELS)
#: Crop classes per level, background excluded (paper's taxonomy).
NUM_CROP_CLASSES: Tuple[int, ...] = (6, 36, 82, 101)
#: Id of background / non-crop at every level.
BACKGROUND_ID = 0


def level_index(level: str) -> int:
    """Return the 0-based index of a level name such as ``'level3'``.

    Raises:
        ValueError: If ``level`` is not one of :data:`LEVELS`.
    """
    if level not in LEVELS:
        raise ValueError(f'unknown level {level!r}; expected one of {LEVELS}')
    return LEVELS.index(level)
