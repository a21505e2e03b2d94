"""Converters from raw geodata (rasters + parcel vectors) to H2Crop tiles."""
from .convert import convert_region
from .parcels import (
                      ParcelDataError,
                      Parcels,
                      find_overlaps,
                      map_codes,
                      rasterize_parcel_ids,
                      read_code_map,
                      read_parcels,
)
from .split import blocked_split

__all__ = ['convert_region', 'ParcelDataError', 'Parcels', 'find_overlaps',
           'map_codes', 'rasterize_parcel_ids', 'read_code_map',
           'read_parcels', 'blocked_split']
