"""Converters from raw geodata (rasters + parcel vectors) to H2Crop tiles."""
from .convert import convert_region
from .parcels import (
                      CodeMap,
                      ParcelDataError,
                      Parcels,
                      find_overlaps,
                      load_code_map,
                      map_codes,
                      rasterize_parcel_ids,
                      read_code_map,
                      read_parcels,
                      resolve_code_column,
)
from .split import blocked_split

__all__ = ['convert_region', 'CodeMap', 'ParcelDataError', 'Parcels',
           'find_overlaps', 'load_code_map', 'map_codes',
           'rasterize_parcel_ids', 'read_code_map', 'read_parcels',
           'resolve_code_column', 'blocked_split']
