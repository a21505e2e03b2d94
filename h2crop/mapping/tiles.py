"""Mapping H5 tiles (with or without labels) into per-tile prediction files.

Each tile ``<id>.h5`` gives ``<id>_pred.h5`` with ``pred`` (L, H, W) uint8
class ids, ``confidence`` (L, H, W) uint8 percent and
``deepest_confident_level`` (H, W) uint8; level names, class names, the
decoder and the threshold are stored as attributes. Tiles that carry a
georeference (converted by ``tools/dataset_converters/rasters2h2crop.py``)
also give ``<id>_pred.tif``: the same ids and confidences as a GeoTIFF that
lands where the tile was cut (:func:`~h2crop.mapping.geotiff.
write_tile_geotiff`).
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import h5py
import numpy as np
import torch

from h2crop.constants import (
    DATA_LISTS_DIR,
    H5_ATTR_CRS,
    H5_ATTR_TRANSFORM,
    H5_DIR,
    H5_SUFFIX,
)
from h2crop.datasets.transforms import LoadH2CropH5, PackH2CropInputs
from h2crop.mapping.geotiff import (
    confidence_percent,
    model_tags,
    write_tile_geotiff,
)

#: Suffix of a prediction file and of its picture.
PRED_SUFFIX = '_pred.h5'
PNG_SUFFIX = '_pred.png'
TIF_SUFFIX = '_pred.tif'


def georeference_attrs(path: str) -> Dict[str, object]:
    """A tile's georeference attributes, or ``{}`` when it carries none."""
    with h5py.File(path, 'r') as h5:
        if all(k in h5.attrs for k in (H5_ATTR_CRS, H5_ATTR_TRANSFORM)):
            return {k: h5.attrs[k] for k in (H5_ATTR_CRS, H5_ATTR_TRANSFORM)}
    return {}


def _list_tiles(list_file: str) -> List[str]:
    """Tiles of a split list: ``<root>/h5_data/<id>.h5``.

    ``root`` is the folder above ``data_lists/`` (or the list's folder).
    """
    with open(list_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    folder = osp.dirname(osp.abspath(list_file))
    roots = [folder, osp.dirname(folder)] if osp.basename(
        folder) == DATA_LISTS_DIR else [folder]
    for root in reversed(roots):
        for candidate in (osp.join(root, H5_DIR), root):
            if ids and osp.isfile(osp.join(candidate, ids[0] + H5_SUFFIX)):
                return [osp.join(candidate, i + H5_SUFFIX) for i in ids]
    tried = [osp.join(r, d) for r in roots for d in (H5_DIR, '')]
    raise FileNotFoundError(f'{list_file}: tile {ids[:1]} not found in '
                            f'{tried}')


def collect_tiles(paths: Sequence[str]) -> List[str]:
    """Expand H5 files, folders of tiles and split lists into tile files.

    Raises:
        FileNotFoundError: Naming a path that is none of these.
    """
    tiles: List[str] = []
    for path in paths:
        if osp.isdir(path):
            sub = osp.join(path, H5_DIR)
            folder = sub if osp.isdir(sub) else path
            found = sorted(glob.glob(osp.join(folder, '*' + H5_SUFFIX)))
            found = [f for f in found if not f.endswith(PRED_SUFFIX)]
            if not found:
                raise FileNotFoundError(f'{path}: no *{H5_SUFFIX} tiles')
            tiles += found
        elif osp.isfile(path) and path.endswith(H5_SUFFIX):
            tiles.append(path)
        elif osp.isfile(path):
            tiles += _list_tiles(path)
        else:
            raise FileNotFoundError(f'{path}: not an H5 tile, a folder of '
                                    'tiles or a split list')
    return tiles


def tile_id(path: str) -> str:
    """Sample id of a tile file (its name without ``.h5``)."""
    return osp.basename(path)[:-len(H5_SUFFIX)]


def load_tile(model: torch.nn.Module, path: str) -> Dict[str, object]:
    """Read a tile (label optional) as the model needs it.

    The tile goes through the dataset's load and pack transforms.
    """
    results = dict(h5_path=path, sample_id=tile_id(path),
                   modalities=model.modalities, end_month=model.num_frames,
                   levels=model.levels, require_label=False)
    return PackH2CropInputs()(LoadH2CropH5()(results))


def predict_tile(model: torch.nn.Module, path: str) -> Dict[str, object]:
    """:func:`h2crop.apis.inference_model` on one tile file."""
    from h2crop.apis import inference_model
    inputs = load_tile(model, path)['inputs']
    return inference_model(model, **inputs)


def write_prediction(path: str, result: Dict[str, object],
                     model: torch.nn.Module, source: str) -> None:
    """Write a ``*_pred.h5`` file (see the module docstring)."""
    tmp = path + '.tmp'
    with h5py.File(tmp, 'w') as h5:
        opts = dict(compression='gzip', compression_opts=4)
        h5.create_dataset('pred', data=result['pred'], **opts)
        conf = confidence_percent(np.asarray(result['confidence']))
        h5.create_dataset('confidence', data=conf, **opts)
        h5.create_dataset('deepest_confident_level',
                          data=result['deepest_level'], **opts)
        h5.attrs['levels'] = json.dumps(list(result['levels']))
        h5.attrs['class_names'] = json.dumps(
            {lv: list(model.taxonomy.level_names(lv))
             for lv in result['levels']})
        h5.attrs['confidence_unit'] = 'percent'
        for key, value in model_tags(model).items():
            h5.attrs[key] = value
        h5.attrs['deepest_level_tau'] = model.test_cfg['tau']
        h5.attrs['source'] = osp.abspath(source)
    os.replace(tmp, path)


def map_tiles(model: torch.nn.Module, tiles: Sequence[str], out_dir: str,
              show: bool = False, overwrite: bool = False,
              rank: int = 0, world_size: int = 1,
              progress: bool = False) -> List[str]:
    """Map tiles into ``out_dir``; rank r of W takes tiles r, r+W, ...

    Returns:
        The prediction files written by this rank (``*_pred.h5``; the
        GeoTIFFs of georeferenced tiles sit beside them).

    Raises:
        FileExistsError: When an output exists and ``overwrite`` is False
            (checked for all tiles before any is written).
    """
    os.makedirs(out_dir, exist_ok=True)
    ids = [tile_id(t) for t in tiles]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f'tiles with the same id would overwrite each '
                         f'other\'s predictions: {dupes[:5]}')
    outs = [osp.join(out_dir, i + PRED_SUFFIX) for i in ids]
    if not overwrite:
        pngs = [osp.join(out_dir, i + PNG_SUFFIX) for i in ids] if show \
            else []
        tifs = [osp.join(out_dir, i + TIF_SUFFIX) for i in ids]
        existing = [o for o in outs + pngs + tifs if osp.exists(o)]
        if existing:
            raise FileExistsError(f'{len(existing)} prediction(s) exist, '
                                  f'e.g. {existing[0]}; pass --overwrite '
                                  'to replace them')
    mine = list(range(rank, len(tiles), world_size))
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(mine))
    written = []
    for i in mine:
        result = predict_tile(model, tiles[i])
        write_prediction(outs[i], result, model, tiles[i])
        attrs = georeference_attrs(tiles[i])
        if attrs:
            write_tile_geotiff(result['pred'], result['confidence'], attrs,
                               osp.join(out_dir, ids[i] + TIF_SUFFIX),
                               levels=result['levels'], overwrite=overwrite,
                               tags=model_tags(model))
        if show:
            from h2crop.visualization import plot_class_maps
            plot_class_maps(
                result['pred'],
                [model.taxonomy.level_names(lv) for lv in result['levels']],
                result['levels'], osp.join(out_dir, ids[i] + PNG_SUFFIX),
                title=ids[i])
        written.append(outs[i])
        if bar is not None:
            bar.update()
    return written
