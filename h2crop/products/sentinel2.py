"""Sentinel-2 L2A products -> monthly composites in the dataset's format.

Three input kinds become the same in-memory :class:`S2Product` (a pystac
Item whose assets are named ``B02`` .. ``B12`` and ``SCL`` and carry their
grids, plus the product's radiometry):

* STAC Items (an ItemCollection, Catalog, Collection or Item JSON, or
  Items from a search), whatever the catalogue's asset keys (``B02``,
  ``B02_10m``, ``blue``; band names also from ``eo:bands`` / ``bands``);
* SAFE products, as folders or zip archives (:mod:`.safe`);
* folders of band files (GeoTIFF / COG / JP2 named by band, e.g. ``B02.tif``
  or ``T32TQM_20230615T103629_B02_10m.tif``), with the product's metadata
  from an ``MTD_MSIL2A.xml`` or STAC Item JSON beside them, the folder's
  name or the files' offset tags.

One load path then serves them all: ``odc-stac`` reads each month's
products lazily in dask chunks, reprojected onto the output grid (bilinear
by default for reflectances, nearest for SCL), and every chunk is reduced
on its own (:func:`reduce_observations`): offset removed, SCL classes
masked, one observation per day, the median (or mean) over the month's
days and the count of clear days. Chunks are computed a few at a time and
written into an intermediate GeoTIFF, so memory follows the chunk size and
the number of workers, not the area; the intermediate becomes a COG.

Outputs (``OUT/``): ``s2_<YYYY>_<MM>.tif`` (10 bands int16, the dataset's
band order and scaling, nodata -32768 where a month had no clear
observation), ``s2_<YYYY>_<MM>_count.tif`` (uint8 clear days),
optionally ``s2_<YYYY>_<MM>_filled.tif`` (:mod:`.gapfill`), and
``s2_report.json`` / ``s2_report.csv``.
"""
import calendar
import csv
import datetime as dt
import glob
import json
import logging
import os
import os.path as osp
import re
import time
import warnings
from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import pystac
import rasterio
from mmengine.logging import MMLogger
from pystac.extensions.projection import ProjectionExtension
from rasterio.crs import CRS
from rasterio.windows import Window

from h2crop.constants import (
    NUM_MONTHS,
    S2_BAND_NAMES,
    S2_DTYPE,
    S2_GSD,
    S2_REFLECTANCE_SCALE,
)
from h2crop.geo.cog import (
    bounded_gdal_cache,
    check_output,
    temp_path,
    write_cog,
)
from h2crop.geo.footprint import footprint
from h2crop.geo.grid import (
    RasterGrid,
    crs_name,
    fill_value,
    read_grid,
    same_crs,
)

from . import safe as safe_mod
from .errors import ProductError
from .gapfill import fill_monthly_gaps
from .s2_metadata import (
    DEFAULT_MASK_CLASSES,
    NATIVE_RESOLUTION,
    PRODUCT_ASSETS,
    PRODUCT_BANDS,
    PRODUCT_NODATA,
    SCL,
    Radiometry,
    check_level,
    check_mask_classes,
    parse_baseline,
    pick_finest,
    resolve_radiometry,
)
from .stac import (
    asset_grid,
    fill_projection,
    open_header,
    read_stac,
    search_items,
)

#: Nodata value of the composites (the int16 minimum).
COMPOSITE_NODATA = int(fill_value(S2_DTYPE))
#: Data type of the clear-observation counts (no nodata: 0 = none).
COUNT_DTYPE = 'uint8'
#: Pixel size (m) of the dataset's S2 cubes, the only one the model knows.
#: Band whose negative values flag a product whose offset was removed twice
#: (red reflectance of vegetation and soil is well above 0.1).
RED = 'B04'
#: Share of a product's clear pixels with negative red above which the
#: report warns.
NEGATIVE_RED_WARN = 0.05
#: Reductions of a month's clear observations.
REDUCERS = ('median', 'mean')
#: Resampling of reflectance bands onto the output grid (SCL: nearest).
RESAMPLINGS = ('bilinear', 'cubic', 'nearest')
#: dask schedulers.
SCHEDULERS = ('threads', 'processes', 'synchronous')
#: Default chunk side (px) of the lazy load and of the reduction.
CHUNK_SIZE = 512
REPORT_JSON = 's2_report.json'
REPORT_CSV = 's2_report.csv'
REPORT_COLUMNS = ('month', 'file', 'count_file', 'n_products', 'products',
                  'n_observations', 'clear_share', 'filled_file',
                  'filled_share', 'missing_after_fill_share')
#: Band aliases (lower case) of asset keys, eo:bands names and common names.
BAND_ALIASES: Dict[str, Tuple[str, ...]] = {
    'B02': ('b02', 'b2', 'blue'),
    'B03': ('b03', 'b3', 'green'),
    'B04': ('b04', 'b4', 'red'),
    'B05': ('b05', 'b5', 'rededge1'),
    'B06': ('b06', 'b6', 'rededge2'),
    'B07': ('b07', 'b7', 'rededge3'),
    'B08': ('b08', 'b8', 'nir'),
    'B8A': ('b8a', 'nir08'),
    'B11': ('b11', 'swir16'),
    'B12': ('b12', 'swir22'),
    SCL: ('scl', ),
}
_ALIAS = {alias: band for band, names in BAND_ALIASES.items()
          for alias in names}
#: Roles of assets that are never band data.
_NOT_DATA_ROLES = {'thumbnail', 'overview', 'visual', 'metadata'}
#: Earth-Search-style product ids: ``S2A_32TQM_20230615_0_L2A``.
_ES_NAME = re.compile(r'S2[A-D]_\d{1,2}[A-Z]{3}_(\d{8})_\d+_L2A')
_RASTER_SUFFIXES = ('.tif', '.tiff', '.jp2')


def _warn(msg: str) -> None:
    MMLogger.get_current_instance().warning(msg)


# ------------------------------------------------------------------ products
@dataclass
class S2Product:
    """One L2A acquisition of one tile, ready to load.

    Args:
        id: Product id (SAFE name, STAC item id or folder name).
        datetime: Sensing time (UTC).
        item: pystac Item with assets :data:`PRODUCT_ASSETS` carrying
            projection and raster-band fields.
        radiometry: Offsets and gains to the dataset's scaling.
        source: Where it was read from.
    """

    id: str
    datetime: dt.datetime
    item: pystac.Item
    radiometry: Radiometry
    source: str

    @property
    def grid(self) -> RasterGrid:
        """The 10 m grid of the product (its B02 asset)."""
        return asset_grid(self.item.assets['B02'], self.item)

    @property
    def month(self) -> Tuple[int, int]:
        """``(year, month)`` of the sensing time."""
        return self.datetime.year, self.datetime.month


def _product_item(pid: str, when: dt.datetime, hrefs: Dict[str, str],
                  properties: Optional[dict] = None,
                  extras: Optional[Dict[str, dict]] = None) -> pystac.Item:
    """A pystac Item with the product's assets, projection filled in."""
    item = pystac.Item(id=pid, geometry=None, bbox=None, datetime=when,
                       properties=dict(properties or {}))
    ProjectionExtension.add_to(item)
    for key in PRODUCT_ASSETS:
        item.add_asset(key, pystac.Asset(
            href=hrefs[key], roles=['data'],
            extra_fields=dict((extras or {}).get(key, {}))))
    fill_projection(item, PRODUCT_ASSETS,
                    nodata={k: PRODUCT_NODATA for k in PRODUCT_ASSETS})
    return item


def _alias_band(name: Optional[str]) -> Optional[str]:
    return _ALIAS.get(str(name).strip().lower()) if name else None


def _asset_choice(key: str, asset: pystac.Asset
                  ) -> Optional[Tuple[str, Tuple[float, int]]]:
    """The band an asset holds and its preference (lower is better)."""
    roles = set(asset.roles or ())
    if roles and roles <= _NOT_DATA_ROLES:
        return None
    lowered = key.lower()
    jp2 = lowered.endswith('-jp2') or 'jp2' in (asset.media_type or '')
    base = lowered[:-4] if lowered.endswith('-jp2') else lowered
    res = None
    match = re.fullmatch(r'(.+?)_(\d{2})m', base)
    if match:
        base, res = match.group(1), float(match.group(2))
    band = _alias_band(base)
    if band is None:
        for entry in (asset.extra_fields.get('eo:bands')
                      or asset.extra_fields.get('bands') or [])[:1]:
            band = _alias_band(entry.get('name'))
            common = entry.get('common_name') or entry.get('eo:common_name')
            if band is None and common != 'rededge':
                band = _alias_band(common)
    if band is None:
        return None
    if res is None:
        rb = (asset.extra_fields.get('raster:bands') or [{}])[0]
        res = rb.get('spatial_resolution') or asset.extra_fields.get('gsd')
        transform = asset.extra_fields.get('proj:transform')
        if res is None and transform:
            res = abs(transform[0])
    res = float(res) if res is not None else float(NATIVE_RESOLUTION[band])
    return band, (res, int(jp2))


def select_assets(item: pystac.Item) -> Dict[str, str]:
    """Asset key per band of :data:`PRODUCT_ASSETS` in a STAC Item.

    Keys are matched case-insensitively with a resolution suffix removed
    (``B02``, ``b2``, ``B02_10m``, ``blue``, ``blue-jp2``), then through
    the asset's ``eo:bands`` / ``bands`` name and common name. When several
    assets hold a band, the finest resolution wins, then COG over JP2.

    Raises:
        ProductError: Naming the item, the missing bands and its keys.
    """
    choices = ((key, _asset_choice(key, asset))
               for key, asset in item.assets.items())
    best = pick_finest((c[0], c[1], key) for key, c in choices if c)
    missing = [b for b in PRODUCT_ASSETS if b not in best]
    if missing:
        raise ProductError(
            f'STAC item {item.id}: no asset for {missing} (asset keys '
            f'{sorted(item.assets)}; accepted keys per band: e.g. B02, '
            'B02_10m, blue, or an eo:bands name)')
    return best


def _stated_stac_offsets(item: pystac.Item, keys: Dict[str, str]
                         ) -> Tuple[Optional[Dict[str, float]],
                                    Optional[Dict[str, float]]]:
    """DN offsets and quantification per band from raster fields."""
    offsets, quant = {}, {}
    for band in PRODUCT_BANDS:
        asset = item.assets[keys[band]]
        rb = (asset.extra_fields.get('raster:bands') or [{}])[0]
        common = (asset.extra_fields.get('bands') or [{}])[0]
        offset = rb.get('offset', asset.extra_fields.get(
            'raster:offset', common.get('raster:offset')))
        scale = rb.get('scale', asset.extra_fields.get(
            'raster:scale', common.get('raster:scale')))
        if offset is None:
            continue
        if not scale:
            raise ProductError(f'STAC item {item.id}: asset {keys[band]} '
                               'states an offset but no scale; cannot '
                               'convert it to digital numbers')
        offsets[band] = float(offset) / float(scale)
        quant[band] = 1.0 / float(scale)
    return (offsets or None), (quant or None)


def _metadata_asset(item: pystac.Item) -> Optional[str]:
    """A local ``MTD_MSIL2A.xml`` the item links as an asset."""
    for asset in item.assets.values():
        href = asset.href or ''
        if href.endswith(safe_mod.MTD_L2A) and osp.isfile(href):
            return href
    return None


def _item_time(item: pystac.Item) -> dt.datetime:
    when = item.datetime or item.common_metadata.start_datetime
    if when is None:
        raise ProductError(f'STAC item {item.id}: no datetime')
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def product_from_stac(item: pystac.Item,
                      assume_offset: Optional[float] = None,
                      source: str = '') -> S2Product:
    """An :class:`S2Product` from a STAC Item of any catalogue.

    Args:
        item: The item (not modified).
        assume_offset: DN offset for items that state none.
        source: Where the item came from, for the report.

    Raises:
        ProductError: For a Level-1 item, a missing band, an unreadable
            asset or an offset that cannot be told.
    """
    props = item.properties
    check_level(item.id, item.id, props.get('s2:product_type'),
                props.get('product:type'), props.get('processing:level'),
                item.collection_id, props.get('s2:product_uri'))
    keys = select_assets(item)
    baseline = parse_baseline(props.get('s2:processing_baseline')
                              or props.get('processing:version'))
    if baseline is None:
        for name in (props.get('s2:product_uri'), item.id):
            parts = safe_mod.parse_name(name or '')
            if parts:
                baseline = parse_baseline(parts['baseline'])
                break
    offsets, quant = _stated_stac_offsets(item, keys)
    stated_by = 'STAC raster:bands offset / scale'
    mtd = _metadata_asset(item) if offsets is None else None
    if mtd is not None:
        with open(mtd, 'rb') as f:
            md = safe_mod.parse_metadata(f.read(), mtd)
        offsets = safe_mod.stated_offsets(md)
        quant = {b: md.quantification for b in PRODUCT_BANDS} \
            if md.quantification else None
        baseline = md.baseline or baseline
        stated_by = mtd
    radiometry = resolve_radiometry(
        f'STAC item {item.id}', baseline=baseline,
        offset_applied=props.get('earthsearch:boa_offset_applied'),
        stated_offsets=offsets, quantification=quant,
        assume_offset=assume_offset, stated_by=stated_by, warn=_warn)
    extras = {band: {k: v for k, v in item.assets[key].extra_fields.items()}
              for band, key in keys.items()}
    proj_props = {k: v for k, v in props.items() if k.startswith('proj:')}
    for band in extras:
        for k, v in proj_props.items():
            extras[band].setdefault(k, v)
    hrefs = {band: item.assets[key].href for band, key in keys.items()}
    out = _product_item(item.id, _item_time(item), hrefs,
                        {k: v for k, v in props.items()
                         if not k.startswith('proj:')}, extras)
    return S2Product(item.id, _item_time(item), out, radiometry,
                     source or item.get_self_href() or item.id)


def product_from_safe(path: str,
                      assume_offset: Optional[float] = None) -> S2Product:
    """An :class:`S2Product` from a SAFE folder or zip archive."""
    prod = safe_mod.read_safe(path)
    md = prod.metadata
    radiometry = resolve_radiometry(
        prod.name, baseline=md.baseline or parse_baseline(
            (safe_mod.parse_name(prod.name) or {}).get('baseline')),
        stated_offsets=safe_mod.stated_offsets(md),
        quantification={b: md.quantification for b in PRODUCT_BANDS}
        if md.quantification else None,
        assume_offset=assume_offset, stated_by=safe_mod.MTD_L2A, warn=_warn)
    item = _product_item(prod.name, prod.datetime, prod.files,
                         {'s2:product_type': md.product_type})
    return S2Product(prod.name, prod.datetime, item, radiometry, path)


def _band_files(folder: str) -> Dict[str, str]:
    """Band file per asset in a folder (finest resolution per band)."""
    seen: Dict[Tuple[str, float], str] = {}
    for path in sorted(os.listdir(folder)):
        if not path.lower().endswith(_RASTER_SUFFIXES):
            continue
        stem = osp.splitext(path)[0]
        tokens = [t for t in re.split(r'[^0-9A-Za-z]+', stem) if t]
        bands = {_alias_band(t) for t in tokens} - {None}
        if len(bands) != 1:
            continue
        band = bands.pop()
        res_tokens = [t for t in tokens if re.fullmatch(r'\d{2}m', t)]
        res = float(res_tokens[0][:-1]) if res_tokens else \
            float(NATIVE_RESOLUTION[band])
        if (band, res) in seen:
            raise ProductError(f'{folder}: two files for {band} at {res:g} '
                               f'm ({seen[band, res]}, {path})')
        seen[band, res] = path
    return pick_finest((band, res, osp.join(folder, path))
                       for (band, res), path in seen.items())


def _is_band_folder(path: str) -> bool:
    """Whether ``path`` is a folder of at least two band files."""
    return osp.isdir(path) and len(_band_files(path)) >= 2


def _folder_time(name: str) -> Optional[dt.datetime]:
    parts = safe_mod.parse_name(name)
    if parts:
        return safe_mod.name_datetime(parts['sensing'])
    match = _ES_NAME.search(name) or re.search(r'(?<!\d)(20\d{6})(?!\d)',
                                               name)
    if match:
        return dt.datetime.strptime(match.group(1), '%Y%m%d').replace(
            tzinfo=dt.timezone.utc)
    return None


def product_from_band_folder(path: str,
                             assume_offset: Optional[float] = None
                             ) -> S2Product:
    """An :class:`S2Product` from a folder of band files.

    The product's date, level and radiometry come from (first found) an
    ``MTD_MSIL2A.xml`` in the folder, a STAC Item JSON in the folder, the
    folder's name (SAFE or Earth Search style) and the band files' offset /
    scale tags.

    Raises:
        ProductError: For a missing band, a Level-1 product, no date or
            an offset that cannot be told.
    """
    name = osp.basename(osp.normpath(path))
    files = _band_files(path)
    missing = [b for b in PRODUCT_ASSETS if b not in files]
    if missing:
        raise ProductError(f'{path}: no band file for {missing} (expected '
                           'files named by band, e.g. B02.tif, B8A.tif, '
                           'SCL.tif, or *_B02_10m.tif)')
    check_level(name, name)
    when = _folder_time(name)
    baseline = parse_baseline((safe_mod.parse_name(name) or {}).get(
        'baseline'))
    applied, offsets, quant, stated_by, props = None, None, None, '', {}
    mtd = osp.join(path, safe_mod.MTD_L2A)
    for other in safe_mod.MTD_NOT_L2A:
        if osp.isfile(osp.join(path, other)):
            check_level(name, other)
    if osp.isfile(mtd):
        with open(mtd, 'rb') as f:
            md = safe_mod.parse_metadata(f.read(), mtd)
        check_level(name, md.product_type, md.level_tag)
        when = md.start_time or when
        baseline = md.baseline or baseline
        offsets, stated_by = safe_mod.stated_offsets(md), mtd
        quant = {b: md.quantification for b in PRODUCT_BANDS} \
            if md.quantification else None
        props['s2:product_type'] = md.product_type
    else:
        for js in sorted(glob.glob(osp.join(path, '*.json'))):
            try:
                item = pystac.Item.from_file(js)
            except Exception:  # not an Item: ignored, others may be
                continue
            p = item.properties
            check_level(name, item.id, p.get('s2:product_type'),
                        p.get('processing:level'), item.collection_id)
            when = _item_time(item)
            baseline = parse_baseline(p.get('s2:processing_baseline')
                                      or p.get('processing:version')) \
                or baseline
            applied = p.get('earthsearch:boa_offset_applied')
            try:
                offsets, quant = _stated_stac_offsets(item,
                                                      select_assets(item))
            except ProductError:
                offsets, quant = None, None
            stated_by = js
            props = {k: v for k, v in p.items() if not k.startswith('proj:')}
            break
    if offsets is None:
        tags = {b: open_header(files[b]) for b in PRODUCT_BANDS}
        tagged = {b: h for b, h in tags.items()
                  if h['scales'][0] not in (None, 1.0)
                  or h['offsets'][0] not in (None, 0.0)}
        if tagged:
            offsets = {b: h['offsets'][0] / h['scales'][0]
                       for b, h in tagged.items()}
            quant = {b: 1.0 / h['scales'][0] for b, h in tagged.items()}
            stated_by = 'GeoTIFF offset / scale tags'
    if when is None:
        raise ProductError(
            f'{path}: cannot tell the acquisition date (name the folder '
            'like the product, e.g. S2B_MSIL2A_20230615T103629_N0509_R008_'
            'T32TQM_20230615T134516 or S2B_32TQM_20230615_0_L2A, or put its '
            'MTD_MSIL2A.xml or STAC item JSON beside the bands)')
    radiometry = resolve_radiometry(
        name, baseline=baseline, offset_applied=applied,
        stated_offsets=offsets, quantification=quant,
        assume_offset=assume_offset, stated_by=stated_by, warn=_warn)
    item = _product_item(name, when, files, props)
    return S2Product(name, when, item, radiometry, path)


ProductSource = Union[str, pystac.Item, S2Product]


def _expand(path: str) -> List[Tuple[str, str]]:
    """(kind, path) of the products a path names."""
    if osp.isfile(path):
        if path.lower().endswith('.json'):
            return [('stac', path)]
        if safe_mod.is_safe(path):
            return [('safe', path)]
        raise ProductError(f'{path}: not a STAC JSON file, a SAFE zip or a '
                           'folder of products')
    if not osp.isdir(path):
        raise ProductError(f'{path}: no such file or folder')
    if safe_mod.is_safe(path):
        return [('safe', path)]
    if _is_band_folder(path):
        return [('bands', path)]
    found = []
    for name in sorted(os.listdir(path)):
        child = osp.join(path, name)
        if osp.isdir(child) and (safe_mod.is_safe(child)
                                 or _is_band_folder(child)):
            found += _expand(child)
        elif osp.isfile(child) and (name.lower().endswith('.zip')
                                    and safe_mod.is_safe(child)):
            found.append(('safe', child))
        elif osp.isfile(child) and name.lower().endswith('.json'):
            found.append(('stac', child))
    if not found:
        raise ProductError(f'{path}: holds no SAFE product (*.SAFE, *.zip), '
                           'band-file folder or STAC JSON')
    return found


def find_products(sources: Iterable[ProductSource],
                  assume_offset: Optional[float] = None) -> List[S2Product]:
    """Every product the sources name, sorted by time then id.

    Args:
        sources: Paths (STAC JSON files, SAFE folders or zips, band-file
            folders, or folders holding any of them), pystac Items or
            :class:`S2Product` objects.
        assume_offset: DN offset for products that state none.

    Returns:
        The products; a product given twice (same id) is kept once, with a
        warning.

    Raises:
        ProductError: For the first source that cannot be used.
    """
    out: Dict[str, S2Product] = {}
    for source in sources:
        if isinstance(source, S2Product):
            prods = [source]
        elif isinstance(source, pystac.Item):
            prods = [product_from_stac(source, assume_offset)]
        else:
            prods = []
            for kind, path in _expand(str(source)):
                if kind == 'stac':
                    prods += [product_from_stac(it, assume_offset, path)
                              for it in read_stac(path)]
                elif kind == 'safe':
                    prods.append(product_from_safe(path, assume_offset))
                else:
                    prods.append(product_from_band_folder(path,
                                                          assume_offset))
        for prod in prods:
            if prod.id in out:
                _warn(f'product {prod.id} given twice ({out[prod.id].source}'
                      f', {prod.source}); using the first')
                continue
            out[prod.id] = prod
    return sorted(out.values(), key=lambda p: (p.datetime, p.id))


def search_products(url: str, grid: RasterGrid, year: int,
                    months: Optional[Iterable[int]] = None,
                    collection: str = 'sentinel-2-l2a',
                    max_cloud: Optional[float] = None,
                    max_items: Optional[int] = None) -> List[pystac.Item]:
    """STAC Items of a year's months over ``grid`` from a STAC API.

    Needs network and ``pystac-client`` (:func:`~.stac.search_items`); the
    items can be passed to :func:`build_monthly_composites` as sources.

    Args:
        url: STAC API root, e.g. ``https://earth-search.aws.element84.com/v1``.
        grid: The output grid; its footprint in WGS 84 is the search box.
        year: Calendar year.
        months: Months (default 1..12); the search spans the first to the
            last.
        collection: Collection id of the API's L2A products.
        max_cloud: Keep items with ``eo:cloud_cover`` below this (percent).
        max_items: Stop after this many items.
    """
    months = _check_months(months)
    bbox = footprint(grid, CRS.from_epsg(4326)).bounds
    last = calendar.monthrange(year, months[-1])[1]
    when = (f'{year}-{months[0]:02d}-01T00:00:00Z/'
            f'{year}-{months[-1]:02d}-{last:02d}T23:59:59Z')
    query = None if max_cloud is None else {
        'eo:cloud_cover': {'lt': float(max_cloud)}}
    return search_items(url, [collection], bbox, when, query, max_items)


# ------------------------------------------------------------------ grid
def resolve_grid(products: Sequence[S2Product],
                 grid: Optional[RasterGrid] = None,
                 like: Optional[str] = None, crs=None,
                 bounds: Optional[Sequence[float]] = None,
                 resolution: float = S2_GSD,
                 allow_other_resolution: bool = False) -> RasterGrid:
    """The output grid: given, like a raster, from bounds, or the first's.

    Without ``grid``, ``like`` or ``bounds`` the first product's 10 m grid
    (its B02 asset) is used.

    Args:
        products: The products, time-sorted.
        grid: An explicit grid (wins).
        like: A raster whose grid to use (``--like``).
        crs: CRS of ``bounds`` (``--crs``).
        bounds: ``(left, bottom, right, top)`` (``--bounds``), snapped
            outwards to multiples of ``resolution``.
        resolution: Pixel size for ``bounds`` (``--resolution``).
        allow_other_resolution: Accept a pixel size other than 10 m.

    Raises:
        ProductError: For contradicting options, no product to take the
            grid from, or a pixel size other than 10 m when not allowed.
    """
    given = [name for name, v in (('grid', grid), ('--like', like),
                                  ('--bounds', bounds)) if v is not None]
    if len(given) > 1:
        raise ProductError(f'give one of {", ".join(given)}, not several')
    if (crs is None) != (bounds is None):
        raise ProductError('--crs and --bounds go together')
    if like is not None:
        try:
            grid = read_grid(like)
        except rasterio.errors.RasterioIOError as err:
            raise ProductError(f'{like}: cannot be read (--like): {err}'
                               ) from err
        if grid.crs is None:
            raise ProductError(f'{like}: has no CRS (--like)')
    elif bounds is not None:
        try:
            grid = RasterGrid.from_bounds(crs, bounds, resolution)
        except (ValueError, rasterio.errors.CRSError) as err:
            raise ProductError(f'--crs {crs} --bounds {list(bounds)}: {err}'
                               ) from err
    elif grid is None:
        if not products:
            raise ProductError('no product to take the output grid from; '
                               'give --like RASTER or --crs and --bounds')
        grid = products[0].grid
    size = grid.pixel_size
    if not allow_other_resolution and not (
            abs(abs(size[0]) - S2_GSD) < 1e-6
            and abs(abs(size[1]) - S2_GSD) < 1e-6
            and grid.crs is not None and grid.crs.is_projected):
        raise ProductError(
            f'output pixel size {abs(size[0]):g} x {abs(size[1]):g} '
            f'({crs_name(grid.crs)}): the model reads {S2_GSD:g} m '
            'Sentinel-2 pixels in a projected CRS; pass '
            '--allow-other-resolution to composite at another size anyway')
    return grid


# ------------------------------------------------------------------ reduce
def _median(obs: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Median over axis 0 of (D, h, w) values, NaN = none; (h, w).

    The mean of the two middle values for an even count, as numpy's;
    sorting puts the NaN last, so the middle of the ``count`` values per
    pixel is picked directly (much faster than ``np.nanmedian`` on a short
    axis).
    """
    ordered = np.sort(obs, axis=0)
    lo = np.clip((count - 1) // 2, 0, None)[None]  # (1, h, w)
    hi = np.clip(count // 2, 0, max(len(obs) - 1, 0))[None]
    low = np.take_along_axis(ordered, lo, axis=0)[0]
    high = np.take_along_axis(ordered, hi, axis=0)[0]
    return (low + high) / 2


def reduce_observations(bands: Sequence[np.ndarray], scl: np.ndarray,
                        offsets: np.ndarray, gains: np.ndarray,
                        days: np.ndarray, mask_classes: Sequence[int],
                        reducer: str = 'median'
                        ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reduce one chunk of a month's observations to its composite.

    A pixel of a product is clear when its SCL class is not in
    ``mask_classes``, SCL is not 0 (no data) and no band is 0 (no data).
    Products of the same day (overlapping tiles of one overpass) give one
    observation: the first clear one in product order. Values are
    ``(DN + offset) * gain`` (reflectance x 10000), reduced over the clear
    days and rounded to the nearest integer (halves to even).

    Args:
        bands: Per band of :data:`PRODUCT_BANDS`, digital numbers of shape
            (T, h, w), T products in time order.
        scl: SCL classes (T, h, w).
        offsets: DN offsets (T, 10).
        gains: Gains (T, 10).
        days: Day number of each product (T,).
        mask_classes: SCL classes that are not clear.
        reducer: ``'median'`` or ``'mean'``.

    Returns:
        ``(composite, count, clear, negative)``: int16 (10, h, w) with
        :data:`COMPOSITE_NODATA` where no day was clear, uint8 (h, w) clear
        days, int64 (T,) clear pixels per product and int64 (T,) clear
        pixels per product whose red (B04) value is negative (a sign of an
        offset removed twice).
    """
    scl = np.asarray(scl)
    t, h, w = scl.shape
    clear = (scl != PRODUCT_NODATA) & ~np.isin(scl, list(mask_classes))
    for band in bands:
        clear &= np.asarray(band) != PRODUCT_NODATA
    per_product = clear.reshape(t, -1).sum(axis=1).astype(np.int64)
    day_values = list(dict.fromkeys(int(d) for d in days))
    if len(day_values) < t:
        # (D, h, w): which product gives day d's observation, -1 for none
        source = np.full((len(day_values), h, w), -1, dtype=np.int32)
        for d, day in enumerate(day_values):
            for i in np.flatnonzero(np.asarray(days) == day):
                source[d] = np.where((source[d] < 0) & clear[i], i,
                                     source[d])
        taken = source >= 0
        index = np.clip(source, 0, None)
    else:  # one product per day: its clear pixels are the observations
        taken, index = clear, None
    count = taken.sum(axis=0)
    good = count > 0
    composite = np.full((len(bands), h, w), COMPOSITE_NODATA, dtype=S2_DTYPE)
    info = np.iinfo(S2_DTYPE)
    negative = np.zeros(t, np.int64)
    for b, band in enumerate(bands):
        # (T, h, w) reflectance x 10000 of every product
        value = (np.asarray(band, dtype=np.float32) +
                 np.asarray(offsets, np.float32)[:, b, None, None]) * \
            np.asarray(gains, np.float32)[:, b, None, None]
        if PRODUCT_BANDS[b] == RED:
            negative = ((value < 0) & clear).reshape(t, -1).sum(axis=1)
        if index is None:
            obs = np.where(taken, value, np.float32(np.nan))  # (D, h, w)
        else:
            obs = np.take_along_axis(value, index, axis=0)  # (D, h, w)
            obs[~taken] = np.nan
        reduced = _median(obs, count) if reducer == 'median' else \
            np.nansum(obs, axis=0) / np.maximum(count, 1)
        composite[b][good] = np.clip(np.rint(reduced[good]), info.min + 1,
                                     info.max)
    return (composite, np.minimum(count, 255).astype(COUNT_DTYPE),
            per_product, negative.astype(np.int64))


# ------------------------------------------------------------------ outputs
def composite_path(out_dir: str, year: int, month: int,
                   kind: str = 'composite') -> str:
    """``OUT/s2_<YYYY>_<MM>[_count|_filled].tif``."""
    suffix = {'composite': '', 'count': '_count', 'filled': '_filled'}[kind]
    return osp.join(out_dir, f's2_{year:04d}_{month:02d}{suffix}.tif')


def _check_months(months: Optional[Iterable[int]]) -> Tuple[int, ...]:
    months = tuple(range(1, NUM_MONTHS + 1)) if months is None else \
        tuple(int(m) for m in months)
    bad = [m for m in months if not 1 <= m <= NUM_MONTHS]
    if bad or not months or len(set(months)) != len(months):
        raise ProductError(f'--months {list(months)}: expected distinct '
                           f'months 1..{NUM_MONTHS}')
    return tuple(sorted(months))


def _geobox(grid: RasterGrid):
    from odc.geo.geobox import GeoBox
    epsg = grid.crs.to_epsg()
    crs = f'EPSG:{epsg}' if epsg else grid.crs.to_wkt()
    return GeoBox((grid.height, grid.width), grid.transform, crs)


def _open_block_writer(path: str, grid: RasterGrid, count: int, dtype: str,
                       nodata: Optional[float]):
    return rasterio.open(
        path, 'w', driver='GTiff', width=grid.width, height=grid.height,
        count=count, dtype=dtype, crs=grid.crs, transform=grid.transform,
        nodata=nodata, tiled=True, blockxsize=256, blockysize=256,
        BIGTIFF='IF_SAFER')


def _describe(dst, year: int, month: int, products: Sequence[S2Product],
              reducer: str) -> None:
    for b, name in enumerate(S2_BAND_NAMES, start=1):
        dst.set_band_description(b, name)
    dst.update_tags(
        year=str(year), month=f'{month:02d}', reducer=reducer,
        scaling=f'surface reflectance x {S2_REFLECTANCE_SCALE}, Sentinel-2 '
        'L2A BOA offset removed', nodata=str(COMPOSITE_NODATA),
        products=json.dumps([p.id for p in products]))


def _progress_bar(total: int, enabled: bool):
    if not enabled or total <= 0:
        return None
    from mmengine.utils import ProgressBar
    return ProgressBar(total)


def _composite_month(products: Sequence[S2Product], grid: RasterGrid,
                     year: int, month: int, out_dir: str, opts: dict
                     ) -> Dict[str, Any]:
    """Write one month's composite and count COGs; return its statistics."""
    import dask
    out = composite_path(out_dir, year, month)
    count_out = composite_path(out_dir, year, month, 'count')
    tmp, tmp_count = temp_path(out, 'blocks'), temp_path(count_out, 'blocks')
    pixels = grid.width * grid.height
    clear_pixels = np.zeros(len(products), np.int64)
    negative = np.zeros(len(products), np.int64)
    covered = 0
    try:
        with _open_block_writer(tmp, grid, len(PRODUCT_BANDS), S2_DTYPE,
                                COMPOSITE_NODATA) as dst, \
                _open_block_writer(tmp_count, grid, 1, COUNT_DTYPE,
                                   None) as dst_count:
            _describe(dst, year, month, products, opts['reducer'])
            dst_count.set_band_description(1, 'clear observations')
            if products:
                for window, (comp, cnt, clear, neg) in _reduced_blocks(
                        products, grid, opts, dask):
                    dst.write(comp, window=window)
                    dst_count.write(cnt, 1, window=window)
                    clear_pixels += clear
                    negative += neg
                    covered += int((cnt > 0).sum())
            else:
                _write_empty(dst, dst_count, grid, opts['chunk_size'])
        write_cog(tmp, out, resampling='average', predictor=True)
        write_cog(tmp_count, count_out, resampling='nearest')
    finally:
        for path in (tmp, tmp_count):
            if osp.exists(path):
                os.remove(path)
    days = sorted({p.datetime.date() for p in products})
    negative_share = {p.id: float(n) / max(int(c), 1)
                      for p, n, c in zip(products, negative, clear_pixels)}
    for pid, share in negative_share.items():
        if share > NEGATIVE_RED_WARN:
            _warn(f'{pid}: {share:.0%} of its clear pixels have negative red '
                  'reflectance after the offset was removed; was the offset '
                  'removed twice (check the offset source in the report, '
                  'or --assume-offset)?')
    return dict(
        month=month, file=out, count_file=count_out,
        products=[p.id for p in products], n_products=len(products),
        n_observations=len(days), dates=[d.isoformat() for d in days],
        clear_share=covered / pixels,
        product_clear_share={p.id: float(c) / pixels
                             for p, c in zip(products, clear_pixels)},
        product_negative_red_share=negative_share)


def _write_empty(dst, dst_count, grid: RasterGrid, size: int) -> None:
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            win = Window(col, row, min(size, grid.width - col),
                         min(size, grid.height - row))
            shape = (int(win.height), int(win.width))
            dst.write(np.full((len(PRODUCT_BANDS), ) + shape,
                              COMPOSITE_NODATA, S2_DTYPE), window=win)
            dst_count.write(np.zeros(shape, COUNT_DTYPE), 1, window=win)


def _load(products: Sequence[S2Product], grid: RasterGrid, opts: dict):
    """The month's products as a lazy (dask) xarray Dataset on ``grid``."""
    import odc.stac
    size = opts['chunk_size']
    ds = odc.stac.load(
        [p.item for p in products], bands=list(PRODUCT_ASSETS),
        geobox=_geobox(grid), chunks={'x': size, 'y': size}, groupby='id',
        resampling={SCL: 'nearest', '*': opts['resampling']},
        fail_on_error=True)
    got = [np.datetime64(t, 'ms') for t in ds.time.values]
    want = [np.datetime64(p.datetime.replace(tzinfo=None), 'ms')
            for p in products]
    if got != want:  # odc-stac keeps the given order for groupby='id'
        raise RuntimeError(f'odc-stac returned the products in another '
                           f'order ({got} vs {want})')
    return ds


class _FailedReads(logging.Handler):
    """Collects the files odc-loader reports as unreadable.

    odc-loader logs the file of a failed read and re-raises GDAL's error,
    whose message lacks it; used as a context manager around a compute.
    """

    LOGGER = 'odc.loader._rio'

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.files = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.args:
            self.files.add(str(record.args[0]))

    def __enter__(self) -> '_FailedReads':
        logging.getLogger(self.LOGGER).addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger(self.LOGGER).removeHandler(self)


def _reduced_blocks(products: Sequence[S2Product], grid: RasterGrid,
                    opts: dict, dask):
    """Yield ``(window, reduce_observations(...))`` chunk by chunk."""
    ds = _load(products, grid, opts)
    bands = [ds[b].data for b in PRODUCT_BANDS]  # (T, H, W) dask arrays
    scl = ds[SCL].data
    offsets = np.array([[p.radiometry.offsets[b] for b in PRODUCT_BANDS]
                        for p in products], np.float32)  # (T, 10)
    gains = np.array([[p.radiometry.gains[b] for b in PRODUCT_BANDS]
                      for p in products], np.float32)  # (T, 10)
    days = np.array([p.datetime.date().toordinal() for p in products])
    rows, cols = scl.chunks[1], scl.chunks[2]
    row0 = np.concatenate([[0], np.cumsum(rows)[:-1]])
    col0 = np.concatenate([[0], np.cumsum(cols)[:-1]])
    tasks = []
    for i in range(len(rows)):
        for j in range(len(cols)):
            window = Window(int(col0[j]), int(row0[i]), cols[j], rows[i])
            task = dask.delayed(reduce_observations)(
                [b.blocks[:, i, j] for b in bands], scl.blocks[:, i, j],
                offsets, gains, days, opts['mask_classes'], opts['reducer'])
            tasks.append((window, task))
    bar = _progress_bar(len(tasks), opts['progress'])
    batch = max(1, opts['workers']) * 2
    failed = _FailedReads()
    for start in range(0, len(tasks), batch):
        part = tasks[start:start + batch]
        try:
            with warnings.catch_warnings():
                # rasterio warns while it builds the in-memory destination
                # of a warp, before odc-loader's transform is attached
                warnings.simplefilter(
                    'ignore', rasterio.errors.NotGeoreferencedWarning)
                with failed:
                    results = dask.compute(*[t for _, t in part],
                                           scheduler=opts['scheduler'],
                                           num_workers=opts['workers'])
        except (rasterio.errors.RasterioError, OSError) as err:
            files = ', '.join(sorted(failed.files)) or \
                'see the log for the file'
            raise ProductError(
                f'{files}: cannot be read ({err}); the file may be corrupt '
                f'or incomplete (month {products[0].datetime:%Y-%m})'
            ) from err
        for (window, _), result in zip(part, results):
            yield window, result
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.file.write('\n')


def _output_paths(out_dir: str, year: int, months: Sequence[int],
                  fill_gaps: bool) -> List[str]:
    kinds = ('composite', 'count') + (('filled', ) if fill_gaps else ())
    return [composite_path(out_dir, year, m, k) for m in months
            for k in kinds] + [osp.join(out_dir, REPORT_JSON),
                               osp.join(out_dir, REPORT_CSV)]


def _grid_dict(grid: RasterGrid) -> Dict[str, Any]:
    return dict(crs=crs_name(grid.crs), crs_wkt=grid.crs.to_wkt(),
                transform=list(grid.transform)[:6], width=grid.width,
                height=grid.height)


def _write_reports(out_dir: str, report: Dict[str, Any]) -> None:
    with open(osp.join(out_dir, REPORT_JSON), 'w') as f:
        json.dump(report, f, indent=2)
    with open(osp.join(out_dir, REPORT_CSV), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        for row in report['months']:
            writer.writerow({k: (';'.join(row[k]) if k == 'products'
                                 else row.get(k, ''))
                             for k in REPORT_COLUMNS})


def build_monthly_composites(
        sources: Iterable[ProductSource], out_dir: str, year: int,
        months: Optional[Iterable[int]] = None,
        grid: Optional[RasterGrid] = None,
        like: Optional[str] = None, crs=None,
        bounds: Optional[Sequence[float]] = None,
        resolution: float = S2_GSD,
        allow_other_resolution: bool = False,
        mask_classes: Iterable[int] = DEFAULT_MASK_CLASSES,
        resampling: str = 'bilinear', reducer: str = 'median',
        assume_offset: Optional[float] = None,
        chunk_size: int = CHUNK_SIZE, workers: Optional[int] = None,
        scheduler: str = 'threads', fill_gaps: bool = False,
        overwrite: bool = False, progress: bool = False,
        log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Sentinel-2 L2A products -> one composite per calendar month.

    Args:
        sources: See :func:`find_products`.
        out_dir: Output folder (created).
        year: Calendar year of the composites.
        months: Months to write (default 1..12). A month without a product
            is written all-nodata and reported.
        grid: Output grid; else ``like``, ``crs`` + ``bounds`` or the first
            product's 10 m grid (:func:`resolve_grid`).
        like: Raster whose grid to use.
        crs: CRS of ``bounds``.
        bounds: ``(left, bottom, right, top)`` in ``crs`` units.
        resolution: Pixel size with ``bounds`` (10 m unless
            ``allow_other_resolution``).
        allow_other_resolution: Accept a pixel size other than 10 m.
        mask_classes: SCL classes that are not clear
            (:data:`~h2crop.products.s2_metadata.DEFAULT_MASK_CLASSES`).
        resampling: Reflectance resampling onto the grid (SCL: nearest).
        reducer: ``'median'`` or ``'mean'`` over the clear days.
        assume_offset: DN offset for products that state none.
        chunk_size: Chunk side (px) of the load and the reduction.
        workers: dask workers (default ``min(4, CPUs)``).
        scheduler: ``'threads'``, ``'processes'`` or ``'synchronous'``.
        fill_gaps: Also write gap-filled composites (:mod:`.gapfill`).
        overwrite: Replace existing outputs.
        progress: Draw a progress bar per month.
        log: Called with one line per month (default: the logger).

    Returns:
        The report written to ``s2_report.json``.

    Raises:
        ProductError: For unusable inputs or options.
        FileExistsError: When an output exists and not ``overwrite``.
    """
    start = time.perf_counter()
    logger = MMLogger.get_current_instance()
    log = log or logger.info
    months = _check_months(months)
    mask_classes = check_mask_classes(mask_classes)
    for name, value, allowed in (('--reducer', reducer, REDUCERS),
                                 ('--resampling', resampling, RESAMPLINGS),
                                 ('--scheduler', scheduler, SCHEDULERS)):
        if value not in allowed:
            raise ProductError(f'{name} {value!r}: expected one of '
                               f'{", ".join(allowed)}')
    if chunk_size < 16 or chunk_size % 16:
        raise ProductError(f'--chunk-size {chunk_size}: expected a multiple '
                           'of 16')
    workers = int(workers or min(4, os.cpu_count() or 1))
    if workers < 1:
        raise ProductError(f'--workers {workers}: expected at least 1')
    for path in _output_paths(out_dir, year, months, fill_gaps):
        check_output(path, overwrite)
    products = find_products(sources, assume_offset)
    chosen = [p for p in products if p.month[0] == year
              and p.month[1] in months]
    skipped = [p.id for p in products if p not in chosen]
    if skipped:
        _warn(f'{len(skipped)} product(s) outside {year} months '
              f'{list(months)} are not used: {", ".join(skipped[:5])}'
              f'{" ..." if len(skipped) > 5 else ""}')
    if not chosen:
        _warn(f'no product in {year} months {list(months)} (of '
              f'{len(products)} given); every month is all nodata')
    grid = resolve_grid(chosen or products, grid, like, crs, bounds,
                        resolution, allow_other_resolution)
    other_crs = [p.id for p in chosen if not same_crs(p.grid.crs, grid.crs)]
    notes = []
    if other_crs:
        notes.append(f'{len(other_crs)} product(s) in another CRS than the '
                     f'output grid ({crs_name(grid.crs)}) are reprojected '
                     f'({resampling}): {", ".join(other_crs)}')
        _warn(notes[-1])
    os.makedirs(out_dir, exist_ok=True)
    opts = dict(mask_classes=mask_classes, resampling=resampling,
                reducer=reducer, chunk_size=int(chunk_size), workers=workers,
                scheduler=scheduler, progress=progress)
    rows = []
    try:
        with bounded_gdal_cache():
            for month in months:
                month_products = [p for p in chosen if p.month[1] == month]
                if not month_products:
                    _warn(f'{year}-{month:02d}: no product; the composite '
                          'is all nodata')
                row = _composite_month(month_products, grid, year, month,
                                       out_dir, opts)
                rows.append(row)
                log(f'{year}-{month:02d}: {row["n_products"]} product(s), '
                    f'{row["n_observations"]} day(s), clear '
                    f'{row["clear_share"]:.1%} -> {row["file"]}')
            if fill_gaps:
                filled = fill_monthly_gaps(
                    {r['month']: r['file'] for r in rows},
                    {r['month']: composite_path(out_dir, year, r['month'],
                                                'filled') for r in rows},
                    overwrite=overwrite, block_size=chunk_size)
                for row in rows:
                    row.update(filled_file=composite_path(
                        out_dir, year, row['month'], 'filled'),
                        **filled[row['month']])
    except BaseException:
        # a run that fails half-way leaves no partial set of months: the
        # files it wrote are removed (those that existed before were
        # refused above unless --overwrite asked to replace them)
        for row in rows:
            for key in ('file', 'count_file', 'filled_file'):
                if row.get(key) and osp.exists(row[key]):
                    os.remove(row[key])
        raise
    seconds = time.perf_counter() - start
    report = dict(
        year=year, months=rows, grid=_grid_dict(grid),
        band_order=list(S2_BAND_NAMES),
        scaling=f'surface reflectance x {S2_REFLECTANCE_SCALE} (int16), '
        'BOA offset removed', nodata=COMPOSITE_NODATA,
        mask_classes=list(mask_classes), resampling=resampling,
        reducer=reducer, fill_gaps=fill_gaps,
        products=[dict(id=p.id, datetime=p.datetime.isoformat(),
                       source=p.source, crs=crs_name(p.grid.crs),
                       baseline=p.radiometry.baseline,
                       offset=sorted(set(p.radiometry.offsets.values())),
                       offset_source=p.radiometry.source,
                       used=p in chosen) for p in products],
        skipped_products=skipped, notes=notes, seconds=seconds,
        composites_per_second=len(rows) / seconds if seconds else None)
    _write_reports(out_dir, report)
    return report
