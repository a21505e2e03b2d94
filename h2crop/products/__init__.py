"""Readers of satellite products: from raw products to the dataset's rasters.

Sentinel-2 L2A (:mod:`.sentinel2`): SAFE folders or zips, band-file
folders or STAC items -> monthly composites in the dataset's band order and
scaling, with clear-observation counts, optional gap filling and a report
(docs/products.md).

EnMAP L2A (:mod:`.enmap`, :mod:`.enmap_cube`): product folders -> the
dataset's 218-band cube on the 30 m grid aligned to the S2 grid, bands
matched by wavelength, quality masks applied, several products mosaicked
latest clear first.

Regions (:mod:`.region`): products + parcels -> composites -> cube -> H2Crop
tiles + band statistics, in resumable stages (:mod:`.stages`).
"""
from .enmap import (
    DEFAULT_MASKS,
    MASKS,
    EnmapProduct,
    EnmapProductError,
    find_enmap_products,
    select_bands,
)
from .enmap_cube import build_enmap_cube
from .errors import ProductError
from .gapfill import fill_monthly_gaps, interpolate_months
from .region import prepare_region, prepare_scene_inputs
from .s2_metadata import (
    DEFAULT_MASK_CLASSES,
    PRODUCT_BANDS,
    SCL_CLASSES,
    Radiometry,
    resolve_radiometry,
)
from .sentinel2 import (
    COMPOSITE_NODATA,
    S2Product,
    build_monthly_composites,
    composite_path,
    find_products,
    reduce_observations,
    resolve_grid,
    search_products,
)
from .stac import read_stac, search_items

__all__ = [
    'ProductError',
    # Sentinel-2
    'S2Product', 'build_monthly_composites', 'find_products',
    'resolve_grid', 'reduce_observations', 'composite_path',
    'search_products',
    'COMPOSITE_NODATA', 'DEFAULT_MASK_CLASSES', 'PRODUCT_BANDS',
    'SCL_CLASSES', 'Radiometry', 'resolve_radiometry',
    'fill_monthly_gaps', 'interpolate_months',
    # EnMAP
    'EnmapProduct', 'EnmapProductError', 'find_enmap_products',
    'select_bands', 'build_enmap_cube', 'MASKS', 'DEFAULT_MASKS',
    # regions
    'prepare_region', 'prepare_scene_inputs',
    # STAC
    'read_stac', 'search_items',
]
