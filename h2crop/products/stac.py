"""Reading STAC catalogues into pystac Items, offline or from a STAC API.

Local inputs are read with ``pystac``: an ItemCollection (``FeatureCollection``
JSON, e.g. a saved search result), a Catalog or Collection (walked for all
its items, children included) or a single Item. Asset hrefs are made
absolute against the file they were read from, so that the items can be
loaded from anywhere.

The loader (``odc-stac``) needs each raster asset's grid from the STAC
projection extension: ``proj:shape``, ``proj:transform`` and a CRS
(``proj:code``, ``proj:epsg``, ``proj:wkt2`` or ``proj:projjson``; asset
fields first, the item's properties as fallback). :func:`fill_projection`
reads it from the files' headers where an item lacks it.

:func:`search_items` queries a STAC API with ``pystac-client``, an optional
dependency (``pip install .[online]``), imported only when called.
"""
import json
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence

import pystac
import rasterio
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from rasterio.crs import CRS
from rasterio.errors import RasterioError

from h2crop.geo.grid import RasterGrid

from .errors import ProductError

#: Prefixes of hrefs that are not local files.
REMOTE_PREFIXES = ('http://', 'https://', 's3://', 'gs://', 'az://',
                   '/vsicurl/', '/vsis3/', '/vsigs/', '/vsiaz/')
#: STAC fields that can carry an asset's CRS, in the order they are read.
CRS_FIELDS = ('proj:code', 'proj:epsg', 'proj:wkt2', 'proj:projjson')


def is_remote(href: str) -> bool:
    """Whether ``href`` names a remote object rather than a local file."""
    return href.startswith(REMOTE_PREFIXES)


def absolute_href(href: str, base_dir: str) -> str:
    """``href`` resolved against ``base_dir`` unless remote or absolute."""
    if is_remote(href) or href.startswith('/vsi') or osp.isabs(href):
        return href
    if href.startswith('file://'):
        return href[len('file://'):]
    return osp.normpath(osp.join(base_dir, href))


def _resolve_assets(item: pystac.Item, base_dir: str) -> pystac.Item:
    for asset in item.assets.values():
        href = asset.get_absolute_href() if item.get_self_href() else None
        asset.href = absolute_href(href or asset.href, base_dir)
    return item


def read_stac(path: str) -> List[pystac.Item]:
    """Every Item in a local STAC file.

    Args:
        path: An ItemCollection (``"type": "FeatureCollection"``), a Catalog
            or Collection (its items and those of its children), or an Item
            JSON file.

    Returns:
        The items, asset hrefs made absolute.

    Raises:
        ProductError: When the file cannot be read or is not STAC.
    """
    try:
        with open(path, encoding='utf-8') as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ProductError(f'{path}: cannot be read as STAC JSON ({err})'
                           ) from err
    kind = doc.get('type') if isinstance(doc, dict) else None
    base = osp.dirname(osp.abspath(path))
    try:
        if kind == 'FeatureCollection':
            items = list(pystac.ItemCollection.from_dict(
                doc, preserve_dict=False).items)
        elif kind == 'Feature':
            items = [pystac.Item.from_file(path)]
        elif kind in ('Catalog', 'Collection'):
            cat = pystac.read_file(path)
            items = list(cat.get_items(recursive=True))
        else:
            raise ProductError(
                f'{path}: key "type" is {kind!r}; expected a STAC '
                'FeatureCollection (ItemCollection), Feature (Item), '
                'Catalog or Collection')
    except ProductError:
        raise
    except Exception as err:  # pystac raises many kinds on bad STAC
        raise ProductError(f'{path}: not valid STAC ({type(err).__name__}: '
                           f'{err})') from err
    return [_resolve_assets(item, base) for item in items]


def _field(asset: pystac.Asset, item: Optional[pystac.Item], key: str):
    value = asset.extra_fields.get(key)
    if value is None and item is not None:
        value = item.properties.get(key)
    return value


def _crs_of(asset: pystac.Asset, item: Optional[pystac.Item]):
    for key in CRS_FIELDS:
        value = _field(asset, item, key)
        if value is None:
            continue
        if key == 'proj:epsg':
            return CRS.from_epsg(int(value))
        if key == 'proj:projjson':
            return CRS.from_user_input(json.dumps(value))
        return CRS.from_user_input(value)
    return None


def asset_grid(asset: pystac.Asset,
               item: Optional[pystac.Item] = None) -> Optional[RasterGrid]:
    """An asset's grid from its projection fields, None if incomplete.

    Args:
        asset: The raster asset.
        item: Its item, whose properties supply fields the asset lacks.
    """
    item = item if item is not None else asset.owner
    shape = _field(asset, item, 'proj:shape')
    transform = _field(asset, item, 'proj:transform')
    crs = _crs_of(asset, item)
    if shape is None or transform is None or crs is None:
        return None
    if len(transform) not in (6, 9):
        raise ProductError(f'{asset.href}: proj:transform has '
                           f'{len(transform)} numbers; expected 6 or 9')
    height, width = (int(v) for v in shape)
    return RasterGrid(crs, Affine(*transform[:6]), width, height)


def open_header(href: str) -> Dict[str, Any]:
    """Grid, data type and nodata of a raster file (header only).

    Raises:
        ProductError: Naming the file when it cannot be opened.
    """
    try:
        with rasterio.open(href) as ds:
            return dict(grid=RasterGrid.from_dataset(ds),
                        dtype=ds.dtypes[0], nodata=ds.nodata,
                        count=ds.count, offsets=ds.offsets,
                        scales=ds.scales)
    except (RasterioError, OSError) as err:
        raise ProductError(f'{href}: cannot be opened as a raster ({err}); '
                           'the file may be corrupt or incomplete') from err


def set_projection(item: pystac.Item, asset: pystac.Asset,
                   grid: RasterGrid) -> None:
    """Write ``grid`` into the asset's projection fields."""
    ProjectionExtension.add_to(item)
    proj = ProjectionExtension.ext(asset)
    epsg = grid.crs.to_epsg() if grid.crs is not None else None
    if epsg:
        proj.code = f'EPSG:{epsg}'
    else:
        proj.wkt2 = grid.crs.to_wkt()
    proj.shape = [grid.height, grid.width]
    proj.transform = list(grid.transform)[:6]


def fill_projection(item: pystac.Item,
                    keys: Optional[Iterable[str]] = None,
                    nodata: Optional[Dict[str, float]] = None) -> None:
    """Give assets that lack them projection and raster-band fields.

    Assets whose grid :func:`asset_grid` cannot tell are opened (header
    only) and get ``proj:shape``, ``proj:transform`` and ``proj:code`` (or
    ``proj:wkt2``); every listed asset gets ``raster:bands`` with the data
    type and nodata value when it has none.

    Args:
        item: The item, changed in place.
        keys: Asset keys to fill; default all.
        nodata: Nodata value per key for files that declare none.

    Raises:
        ProductError: When a file lacking projection fields cannot be read.
    """
    nodata = nodata or {}
    for key in (list(keys) if keys is not None else list(item.assets)):
        asset = item.assets[key]
        grid = asset_grid(asset, item)
        header = None
        if grid is None:
            header = open_header(asset.href)
            set_projection(item, asset, header['grid'])
        if not asset.extra_fields.get('raster:bands'):
            header = header or open_header(asset.href)
            value = header['nodata']
            if value is None:
                value = nodata.get(key)
            band = dict(data_type=header['dtype'])
            if value is not None:
                band['nodata'] = value
            asset.extra_fields['raster:bands'] = [band]


def search_items(url: str, collections: Sequence[str],
                 bbox: Sequence[float], datetime: str,
                 query: Optional[Dict[str, Any]] = None,
                 max_items: Optional[int] = None) -> List[pystac.Item]:
    """Items of a STAC API search (needs network and ``pystac-client``).

    Args:
        url: The API's root, e.g.
            ``https://earth-search.aws.element84.com/v1``.
        collections: Collection ids to search.
        bbox: ``(west, south, east, north)`` in degrees.
        datetime: An RFC 3339 interval, e.g. ``2023-01-01/2023-12-31``.
        query: Property filters, e.g. ``{'eo:cloud_cover': {'lt': 60}}``.
        max_items: Stop after this many items.

    Raises:
        ProductError: When ``pystac-client`` is not installed or the
            search fails.
    """
    try:
        from pystac_client import Client
    except ImportError as err:
        raise ProductError(
            'searching a STAC API needs pystac-client, which is not '
            'installed: pip install "h2crop[online]" (or pip install '
            'pystac-client), or pass a saved ItemCollection JSON instead'
        ) from err
    try:
        client = Client.open(url)
        search = client.search(collections=list(collections),
                               bbox=list(bbox), datetime=datetime,
                               query=query, max_items=max_items)
        return list(search.items())
    except Exception as err:  # network and API errors of many kinds
        raise ProductError(f'STAC search at {url} failed ({err})') from err
