"""Parcel export: per-parcel predictions from a prediction map.

:func:`export_parcel_predictions` reads a prediction GeoTIFF (see
:mod:`h2crop.mapping.geotiff`), rasterises the parcels onto its grid with
the pixel-centre rule and writes a GeoPackage copy of the parcels (all
their attributes and original geometries) with, per level ``<lv>``:

* ``<lv>_id``: the majority class id of the parcel's predicted pixels;
* ``<lv>_name``: its class name in the taxonomy;
* ``<lv>_share``: the share of the parcel's predicted pixels voting for it;
* ``<lv>_conf``: the mean confidence (percent) of those voting pixels
  (null when the map has no confidence bands);

and ``n_pixels``, the parcel's pixels with a prediction. Parcels with no
predicted pixel centre (outside the map, too small, or only nodata) are kept
with null values, so the output holds every parcel.
"""
import os
import os.path as osp
from typing import Dict, Optional, Union

import numpy as np
import pyogrio.raw
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from h2crop.constants import LEVELS
from h2crop.taxonomy import Taxonomy, load_taxonomy

from .geotiff import PRED_NODATA, confidence_band, prediction_bands

#: Column with the number of predicted pixels of a parcel.
PIXELS_FIELD = 'n_pixels'


def export_parcel_predictions(map_path: str,
                              parcels_path: str,
                              out_path: str,
                              taxonomy: Union[str, Taxonomy, None] = None,
                              layer: Optional[str] = None,
                              overwrite: bool = False) -> Dict[str, int]:
    """Write parcels with their predicted class per level (GeoPackage).

    Args:
        map_path: Prediction GeoTIFF (bands ``level1..level4`` of uint8 ids
            with nodata 255, optionally ``level<k>_confidence`` in percent).
        parcels_path: Parcel vectors (any format pyogrio reads) with a CRS.
        out_path: Output GeoPackage.
        taxonomy: ``cascade_labels.csv`` path or Taxonomy for class names;
            None uses numeric names.
        layer: Layer of ``parcels_path``; None reads the first.
        overwrite: Replace an existing ``out_path``.

    Returns:
        ``parcels`` (written) and ``with_prediction`` (parcels with at least
        one predicted pixel).

    Raises:
        FileExistsError: If ``out_path`` exists and ``overwrite`` is False.
        ValueError: For a map or parcel file without CRS, or class ids the
            taxonomy does not know.
    """
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; pass overwrite=True '
                              '(--overwrite) to replace it')
    tax = taxonomy if isinstance(taxonomy, Taxonomy) else \
        load_taxonomy(taxonomy)
    meta, wkb, field_data = _read_all(parcels_path, layer)
    geoms = shapely.from_wkb(wkb)
    n = len(geoms)
    with rasterio.open(map_path) as ds:
        if ds.crs is None or meta.get('crs') is None:
            raise ValueError(f'{map_path if ds.crs is None else parcels_path}'
                             ': no CRS; cannot overlay parcels and map')
        bands = prediction_bands(ds)
        provenance = _provenance(ds, map_path, tax)
        shapes = geoms
        if CRS.from_user_input(meta['crs']) != ds.crs:
            # GeoJSON-like dicts -> transformed dicts
            shapes = transform_geom(
                CRS.from_user_input(meta['crs']), ds.crs,
                [shapely.geometry.mapping(g) for g in geoms])
        # parcel index per pixel, 1-based, 0 = none (later parcels win)
        pid = rasterize(((g, i + 1) for i, g in enumerate(shapes)
                         if g is not None),
                        out_shape=(ds.height, ds.width),
                        transform=ds.transform, fill=0, all_touched=False,
                        dtype='int32').ravel()  # (H, W) -> (H*W,)
        inside = pid > 0
        fields, values, masks = [], [], []
        counted = np.zeros(n + 1, dtype=np.int64)
        for k, level in enumerate(LEVELS):
            if level not in bands:
                continue
            pred = ds.read(bands[level]).ravel().astype(np.int64)
            ok = inside & (pred != PRED_NODATA)
            c = tax.num_classes[k]
            if ok.any() and int(pred[ok].max()) >= c:
                raise ValueError(f'{map_path}: {level} ids up to '
                                 f'{int(pred[ok].max())}; the taxonomy '
                                 f'{tax.source} has 0..{c - 1}')
            # (P+1)*C votes: parcel index * C + class
            votes = np.bincount(pid[ok] * c + pred[ok],
                                minlength=(n + 1) * c).reshape(n + 1, c)
            total = votes.sum(axis=1)
            counted = np.maximum(counted, total)
            winner = votes.argmax(axis=1)
            share = votes[np.arange(n + 1), winner] / np.maximum(total, 1)
            conf_name = confidence_band(level)
            if conf_name in bands:
                conf = ds.read(bands[conf_name]).ravel().astype(np.float64)
                voting = ok & (pred == winner[pid])
                conf_sum = np.bincount(pid[voting], conf[voting],
                                       minlength=n + 1)
                mean_conf = conf_sum / np.maximum(
                    votes[np.arange(n + 1), winner], 1)
                conf_mask = total[1:] == 0
            else:
                mean_conf = np.zeros(n + 1)
                conf_mask = np.ones(n, dtype=bool)
            empty = total[1:] == 0
            names = np.array(tax.level_names(level), dtype=object)
            fields += [f'{level}_id', f'{level}_name', f'{level}_share',
                       f'{level}_conf']
            values += [winner[1:].astype(np.int32), names[winner[1:]],
                       share[1:].astype(np.float64),
                       mean_conf[1:].astype(np.float64)]
            masks += [empty, empty, empty, conf_mask]
    fields.append(PIXELS_FIELD)
    values.append(counted[1:].astype(np.int64))
    masks.append(None)
    clash = [f for f in fields if f in meta['fields']]
    if clash:
        raise ValueError(f'{parcels_path}: already has column(s) {clash}; '
                         'rename them before exporting')
    if osp.exists(out_path):
        os.remove(out_path)
    all_fields = list(meta['fields']) + fields
    pyogrio.raw.write(
        out_path, wkb, list(field_data) + values, all_fields,
        field_mask=[None] * len(field_data) + masks, driver='GPKG',
        geometry_type=meta['geometry_type'], crs=meta['crs'],
        layer_metadata=provenance)
    return dict(parcels=n, with_prediction=int((counted[1:] > 0).sum()))


#: Map tags copied into the GeoPackage layer's metadata.
PROVENANCE_TAGS = ('checkpoint', 'config', 'taxonomy_digest',
                   'taxonomy_source', 'decode', 'deepest_level_tau',
                   'experiment_record', 'h2crop_version')


def _provenance(ds, map_path: str, taxonomy: Taxonomy) -> Dict[str, str]:
    """The map's model tags plus the map itself, for the layer metadata.

    Raises:
        ValueError: When the map states a taxonomy digest other than the
            taxonomy's that names the classes.
    """
    tags = ds.tags()
    stated = tags.get('taxonomy_digest')
    if stated is not None and stated != taxonomy.digest():
        raise ValueError(f'{map_path} was decoded with taxonomy {stated}; '
                         f'the class names given ({taxonomy.source}) are '
                         f'taxonomy {taxonomy.digest()}')
    out = {k: tags[k] for k in PROVENANCE_TAGS if k in tags}
    out['prediction_map'] = osp.abspath(map_path)
    out.setdefault('taxonomy_digest', taxonomy.digest())
    return out


def _read_all(path: str, layer: Optional[str]):
    """``(meta, wkb geometries, field arrays)`` of a vector file."""
    if not osp.exists(path):
        raise FileNotFoundError(f'{path}: parcel file not found')
    meta, _, wkb, field_data = pyogrio.raw.read(path, layer=layer)
    return meta, wkb, field_data
