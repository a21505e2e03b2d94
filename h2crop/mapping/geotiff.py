"""Prediction GeoTIFFs: per-level class ids and confidences on a map grid.

The format (also written for whole scenes by ``tools/infer.py``): one uint8
band per level with the class id (:data:`PRED_NODATA` where there is no
prediction), then optionally one uint8 band per level with the confidence
in percent (0..100). Bands are named by their description: ``level1`` ..
``level4`` and ``level1_confidence`` .. ``level4_confidence``.

Tiles converted by ``tools/dataset_converters/rasters2h2crop.py`` carry
their georeference as H5 attributes, so a tile's prediction can be written
where the tile was cut (:func:`write_tile_geotiff`).
"""
import os.path as osp
from typing import Dict, Mapping, Optional, Sequence, Tuple

import h5py
import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from h2crop.constants import H5_ATTR_CRS, H5_ATTR_TRANSFORM, LEVELS

#: Class id band value where there is no prediction.
PRED_NODATA = 255
#: Suffix of the confidence band descriptions.
CONFIDENCE_SUFFIX = '_confidence'
PRED_DTYPE = 'uint8'


def confidence_percent(confidence):
    """Probabilities in [0, 1] as uint8 percent (rounded, clipped).

    The one conversion of every written confidence (tile H5, tile GeoTIFF,
    scene COG).

    Args:
        confidence: NumPy array or torch tensor of any shape.

    Returns:
        The same kind of array, dtype uint8, values 0..100.
    """
    if isinstance(confidence, np.ndarray):
        pct = np.rint(confidence.astype(np.float64) * 100)
        return np.clip(pct, 0, 100).astype(np.uint8)
    import torch
    return (confidence * 100).round().clamp(0, 100).to(torch.uint8)


def model_tags(model) -> Dict[str, str]:
    """What a prediction file states about the model that made it.

    The decoding (``decode``, ``deepest_level_tau``) and, for models from
    :func:`h2crop.apis.init_model`, the checkpoint, the config and the
    taxonomy digest (``model.provenance``). Written as COG tags, H5
    attributes and GeoPackage metadata.

    Args:
        model: A segmentor.
    """
    tags = dict(decode=str(model.test_cfg['decode']),
                deepest_level_tau=str(model.test_cfg['tau']))
    provenance = getattr(model, 'provenance', None) or dict(
        taxonomy_digest=model.taxonomy.digest(),
        taxonomy_source=str(model.taxonomy.source))
    tags.update({k: str(v) for k, v in provenance.items()})
    return tags


def confidence_band(level: str) -> str:
    """Description of the confidence band of a level."""
    return level + CONFIDENCE_SUFFIX


def tile_georeference(attrs: Mapping) -> Tuple[CRS, Affine]:
    """CRS and affine transform from a converted tile's attributes.

    Args:
        attrs: The tile's H5 attributes (``h5py.File.attrs`` or a dict).

    Raises:
        KeyError: Naming the missing attribute (tiles not converted from
            georeferenced rasters have none).
    """
    for key in (H5_ATTR_CRS, H5_ATTR_TRANSFORM):
        if key not in attrs:
            raise KeyError(f'tile attribute {key!r} missing: the tile carries '
                           'no georeference (only tiles converted by '
                           'rasters2h2crop.py do)')
    values = [float(v) for v in np.asarray(attrs[H5_ATTR_TRANSFORM])]
    crs = attrs[H5_ATTR_CRS]
    if isinstance(crs, bytes):
        crs = crs.decode('utf-8')
    return CRS.from_wkt(str(crs)), Affine(*values[:6])


def read_tile_georeference(h5_path: str) -> Tuple[CRS, Affine]:
    """:func:`tile_georeference` of a tile file."""
    with h5py.File(h5_path, 'r') as f:
        return tile_georeference(dict(f.attrs))


def write_tile_geotiff(pred: np.ndarray,
                       confidence: Optional[np.ndarray],
                       h5_attrs: Mapping,
                       out_path: str,
                       levels: Sequence[str] = LEVELS,
                       overwrite: bool = False,
                       tags: Optional[Mapping[str, str]] = None) -> str:
    """Write a tile's prediction as a GeoTIFF where the tile was cut.

    Args:
        pred: Class ids (L, H, W), integers in 0..254, or
            :data:`PRED_NODATA` where there is no prediction.
        confidence: Probability of the predicted class (L, H, W) as floats
            in [0, 1], or None to write the id bands only.
        h5_attrs: The tile's H5 attributes (georeference).
        out_path: GeoTIFF to write.
        levels: Level names of the L rows (band descriptions).
        overwrite: Replace an existing file.
        tags: Dataset tags to write (e.g. :func:`model_tags`).

    Returns:
        ``out_path``.

    Raises:
        FileExistsError: If ``out_path`` exists and ``overwrite`` is False.
        ValueError: For mismatching shapes or ids out of range.
    """
    pred = np.asarray(pred)
    if pred.ndim != 3 or pred.shape[0] != len(levels):
        raise ValueError(f'pred has shape {pred.shape}; expected '
                         f'({len(levels)}, H, W) for levels {tuple(levels)}')
    if pred.size and (pred.min() < 0 or pred.max() > PRED_NODATA):
        raise ValueError(f'pred ids outside 0..{PRED_NODATA - 1} (and '
                         f'{PRED_NODATA} for no prediction)')
    if confidence is not None and np.shape(confidence) != pred.shape:
        raise ValueError(f'confidence shape {np.shape(confidence)} differs '
                         f'from pred {pred.shape}')
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; pass overwrite=True '
                              '(--overwrite) to replace it')
    crs, transform = tile_georeference(h5_attrs)
    bands = [pred.astype(PRED_DTYPE)]
    names = list(levels)
    if confidence is not None:
        bands.append(confidence_percent(np.asarray(confidence)))
        names += [confidence_band(lv) for lv in levels]
    data = np.concatenate(bands)  # (L or 2L, H, W)
    with rasterio.open(out_path, 'w', driver='GTiff', width=pred.shape[2],
                       height=pred.shape[1], count=len(data),
                       dtype=PRED_DTYPE, crs=crs, transform=transform,
                       nodata=PRED_NODATA, compress='deflate') as dst:
        dst.write(data)
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)
        if tags:
            dst.update_tags(**tags)
    return out_path


def prediction_bands(ds: rasterio.DatasetReader) -> Dict[str, int]:
    """1-based band index per level and confidence band of a prediction map.

    Bands are found by description; a file without descriptions is read
    in the documented order (levels, then confidences).

    Raises:
        ValueError: If no level band is found.
    """
    desc = list(ds.descriptions)
    found = {name: desc.index(name) + 1 for name in
             list(LEVELS) + [confidence_band(lv) for lv in LEVELS]
             if name in desc}
    if not any(lv in found for lv in LEVELS):
        if any(desc):
            raise ValueError(f'{ds.name}: no band named {LEVELS}; band '
                             f'descriptions are {desc}')
        n = min(ds.count, len(LEVELS))
        found = {LEVELS[k]: k + 1 for k in range(n)}
        if ds.count >= 2 * n:
            found.update({confidence_band(LEVELS[k]): n + k + 1
                          for k in range(n)})
    return found


def mosaic_geotiffs(paths: Sequence[str], out_path: str,
                    overwrite: bool = False) -> str:
    """Merge tile GeoTIFFs of one grid into a single GeoTIFF.

    Used to turn the per-tile predictions of georeferenced tiles into one
    map (e.g. for the parcel export). Tiles must share CRS, pixel size and
    band layout; where none covers a pixel the map holds nodata.

    Args:
        paths: GeoTIFFs written by :func:`write_tile_geotiff`.
        out_path: GeoTIFF to write (tiled, deflate-compressed).
        overwrite: Replace an existing file.

    Returns:
        ``out_path``.

    Raises:
        ValueError: For no input, or inputs in different CRSs.
        FileExistsError: If ``out_path`` exists and ``overwrite`` is False.
    """
    from rasterio.merge import merge

    if not paths:
        raise ValueError('no tile GeoTIFF to merge')
    if osp.exists(out_path) and not overwrite:
        raise FileExistsError(f'{out_path} exists; pass overwrite=True '
                              '(--overwrite) to replace it')
    with rasterio.open(paths[0]) as first:
        profile = dict(first.profile)
        descriptions = first.descriptions
        tags = first.tags()
        crs = first.crs
    for path in paths[1:]:
        with rasterio.open(path) as ds:
            if ds.crs != crs:
                raise ValueError(f'{path}: CRS {ds.crs} differs from '
                                 f'{paths[0]} ({crs})')
    data, transform = merge(list(paths), nodata=PRED_NODATA)  # (B, H, W)
    profile.update(width=data.shape[2], height=data.shape[1],
                   transform=transform, nodata=PRED_NODATA, tiled=True,
                   blockxsize=256, blockysize=256, compress='deflate')
    with rasterio.open(out_path, 'w', **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions, start=1):
            if name:
                dst.set_band_description(i, name)
        dst.update_tags(**tags)
    return out_path
