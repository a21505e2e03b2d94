"""A synthetic region as raw geodata: S2 GeoTIFFs, EnMAP, parcel vectors.

:func:`make_synthetic_region` writes what a researcher would bring for a
new region, so the conversion (:func:`~.convert.convert_region`), training,
testing and parcel export can be run end to end:

* ``s2_month01.tif`` .. ``s2_month12.tif``: 10-band int16 monthly
  composites on a UTM 10 m grid (nodata 0 over a strip at the right edge);
* ``enmap.tif``: a 218-band int16 image on a 30 m grid whose origin is
  offset by half an EnMAP pixel (so the converter resamples it);
* ``parcels.gpkg`` / ``parcels_prev.gpkg``: jittered quadrilateral parcels
  on a grid that does not match the tile grid (parcels cross tile borders)
  with a local crop code in ``crop_code``; the previous year changes the
  crop of a share of parcels; a few parcels carry a code absent from the
  code map and one parcel overlaps its neighbour;
* ``code_map.csv`` (``local_code,HCAT3_code``) and ``cascade_labels.csv``.

Crop signatures come from the tile generator's class model
(:mod:`h2crop.datasets.synthetic`), so what is learnable there is here.
"""
import csv
import os
import os.path as osp
from typing import Dict, Optional

import numpy as np
import pyogrio.raw
import rasterio
import shapely
import shapely.affinity
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize

from h2crop.constants import (
    ENMAP_BANDS,
    ENMAP_DTYPE,
    ENMAP_SCALE,
    NUM_MONTHS,
    S2_DTYPE,
)
from h2crop.taxonomy import write_taxonomy_csv

from ..synthetic import (
    _S2_SOIL,
    _S2_VEG,
    _ClassModel,
    synthetic_taxonomy,
)

#: CRS of the synthetic region (UTM zone 32N).
REGION_CRS = 'EPSG:32632'
#: Upper-left corner of the S2 grid (not a multiple of the pixel size).
REGION_ORIGIN = (600004.0, 5400006.0)
S2_PIXEL = 10.0
CODE_COLUMN = 'crop_code'
#: A local code that the code map does not know.
UNMAPPED_CODE = 'X999'
_BACKGROUND_GREEN = 0.45


def _local_code(leaf: int) -> str:
    return f'L{leaf:03d}'


def _write_tif(path: str, data: np.ndarray, transform: Affine,
               nodata: Optional[float]) -> None:
    bands, height, width = data.shape
    with rasterio.open(path, 'w', driver='GTiff', width=width,
                       height=height, count=bands, dtype=data.dtype,
                       crs=CRS.from_user_input(REGION_CRS),
                       transform=transform, nodata=nodata,
                       tiled=True, blockxsize=128, blockysize=128) as dst:
        dst.write(data)


def _write_parcels(path: str, geoms: np.ndarray, codes: np.ndarray) -> None:
    pyogrio.raw.write(path, shapely.to_wkb(geoms),
                      [np.asarray(codes, dtype=object)], [CODE_COLUMN],
                      driver='GPKG', geometry_type='Polygon',
                      crs=REGION_CRS)


def make_synthetic_region(out_dir: str,
                          width: int = 576,
                          height: int = 384,
                          parcel_size: float = 230.0,
                          num_classes: int = 8,
                          prior_change_fraction: float = 0.2,
                          nodata_columns: int = 0,
                          enmap_offset: float = 0.5,
                          seed: int = 0) -> Dict[str, object]:
    """Write a synthetic region's rasters and parcels into ``out_dir``.

    Args:
        out_dir: Output folder (created; files in it are replaced).
        width: S2 columns.
        height: S2 rows.
        parcel_size: Side of a parcel grid cell in metres.
        num_classes: Level-4 classes used (the most frequent ones).
        prior_change_fraction: Share of parcels whose previous-year crop
            differs.
        nodata_columns: S2 columns at the right edge set to nodata (0).
        enmap_offset: Offset of the EnMAP origin in EnMAP pixels (x and y).
        seed: Random seed.

    Returns:
        Paths (``s2`` list, ``enmap``, ``parcels``, ``prior_parcels``,
        ``code_map``, ``taxonomy``), the ``code_column``, and the arrays
        ``leaf`` / ``prior_leaf`` (level-4 id per parcel, 0 for the unmapped
        code) for checks.
    """
    rng = np.random.default_rng([seed, 31337])
    os.makedirs(out_dir, exist_ok=True)
    taxonomy = synthetic_taxonomy(seed)
    model = _ClassModel(taxonomy, seed)
    tax_path = osp.join(out_dir, 'cascade_labels.csv')
    write_taxonomy_csv(taxonomy, tax_path)
    classes = 1 + np.argsort(-model.class_p)[:num_classes]

    # parcels: jittered cells of a grid offset from the tile grid
    x0, y0 = REGION_ORIGIN
    span_x, span_y = width * S2_PIXEL, height * S2_PIXEL
    geoms, leaf = [], []
    nx = int(np.ceil(span_x / parcel_size)) + 1
    ny = int(np.ceil(span_y / parcel_size)) + 1
    shift = rng.uniform(0, parcel_size, 2)
    for i in range(ny):
        for j in range(nx):
            if rng.random() < 0.12:
                continue  # gap: background land
            cx = x0 - shift[0] + (j + 0.5) * parcel_size
            cy = y0 + shift[1] - (i + 0.5) * parcel_size
            # half sides + jitter stay below half a cell: no overlaps
            half = parcel_size * 0.5 * rng.uniform(0.75, 0.85, 4)
            jitter = rng.uniform(-0.05, 0.05, (4, 2)) * parcel_size
            corners = np.array([[-half[0], -half[1]], [half[2], -half[1]],
                                [half[2], half[3]], [-half[0], half[3]]])
            geoms.append(shapely.Polygon(corners + jitter + [cx, cy]))
            leaf.append(int(rng.choice(classes)))
    geoms = np.array(geoms, dtype=object)
    leaf = np.asarray(leaf, dtype=np.int64)
    # one parcel reaching well into its neighbours' cells
    geoms[0] = shapely.affinity.scale(geoms[0], 1.8, 1.8)
    prior_leaf = leaf.copy()
    change = rng.random(len(leaf)) < prior_change_fraction
    prior_leaf[change] = rng.choice(classes, int(change.sum()))
    codes = np.array([_local_code(c) for c in leaf], dtype=object)
    prior_codes = np.array([_local_code(c) for c in prior_leaf],
                           dtype=object)
    unmapped = rng.choice(len(leaf), 3, replace=False)
    codes[unmapped] = UNMAPPED_CODE
    leaf_mapped = leaf.copy()
    leaf_mapped[unmapped] = 0
    parcels_path = osp.join(out_dir, 'parcels.gpkg')
    prior_path = osp.join(out_dir, 'parcels_prev.gpkg')
    for path, cds in ((parcels_path, codes), (prior_path, prior_codes)):
        if osp.exists(path):
            os.remove(path)
        _write_parcels(path, geoms, cds)
    map_path = osp.join(out_dir, 'code_map.csv')
    with open(map_path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['local_code', 'HCAT3_code'])
        for c in range(1, taxonomy.num_classes[-1]):
            writer.writerow([_local_code(c), taxonomy.codes[c]])

    # per parcel (index 0 = background) phenology and spectra; the image
    # follows the *drawn* class, also where the code is unmapped
    n = len(leaf)
    green = np.empty((n + 1, NUM_MONTHS), dtype=np.float32)
    green[0] = _BACKGROUND_GREEN
    green[1:] = model.greenness(leaf, rng.normal(0, 0.3, n),
                                rng.uniform(0.92, 1.08, n))
    s2_veg = np.ones((n + 1, len(_S2_SOIL)), dtype=np.float32)
    s2_veg[1:] = model.params['s2'][leaf]
    bright = np.concatenate([[1.0], rng.uniform(0.93, 1.07, n)])
    shapes = [(g, i + 1) for i, g in enumerate(geoms)]

    s2_transform = Affine(S2_PIXEL, 0, x0, 0, -S2_PIXEL, y0)
    pid = rasterize(shapes, out_shape=(height, width),
                    transform=s2_transform, fill=0, dtype='int32')
    s2_paths = []
    for m in range(NUM_MONTHS):
        g = green[:, m]  # (P+1,)
        table = (_S2_SOIL[:, None] * (1 - g)[None] + _S2_VEG[:, None] *
                 s2_veg.T * g[None]) * bright[None]  # (10, P+1)
        img = table[:, pid] + rng.normal(0, 70, (len(_S2_SOIL), height,
                                                 width))
        img = np.clip(img, 1, 10000).astype(S2_DTYPE)
        if nodata_columns:
            img[:, :, width - nodata_columns:] = 0
        path = osp.join(out_dir, f's2_month{m + 1:02d}.tif')
        _write_tif(path, img, s2_transform, nodata=0)
        s2_paths.append(path)

    # EnMAP on a 30 m grid offset by `enmap_offset` pixels, a summer month
    e_pixel = S2_PIXEL * ENMAP_SCALE
    e_off = enmap_offset * e_pixel
    e_transform = Affine(e_pixel, 0, x0 - e_off, 0, -e_pixel, y0 + e_off)
    extra = 1 if enmap_offset else 0  # cover the S2 grid when offset
    e_w = -(-width // ENMAP_SCALE) + extra
    e_h = -(-height // ENMAP_SCALE) + extra
    e_pid = rasterize(shapes, out_shape=(e_h, e_w), transform=e_transform,
                      fill=0, dtype='int32')
    month = 6
    hs_veg = np.ones((n + 1, ENMAP_BANDS), dtype=np.float32)
    hs_veg[1:] = model.params['hs'][leaf] * model.narrow[leaf]
    gm = green[:, month][:, None]
    spectra = ((model.hs_soil[None] * (1 - gm) +
                model.hs_veg[None] * hs_veg * gm) * bright[:, None])
    enmap = spectra.T[:, e_pid]  # (218, P+1)[:, (h, w)] -> (218, h, w)
    enmap += rng.normal(0, 25, enmap.shape).astype(np.float32)
    enmap = np.clip(enmap, 1, 10000).astype(ENMAP_DTYPE)
    enmap_path = osp.join(out_dir, 'enmap.tif')
    _write_tif(enmap_path, enmap, e_transform, nodata=0)
    return dict(s2=s2_paths, enmap=enmap_path, parcels=parcels_path,
                prior_parcels=prior_path, code_map=map_path,
                taxonomy=tax_path, code_column=CODE_COLUMN,
                leaf=leaf_mapped, prior_leaf=prior_leaf, geometries=geoms,
                unmapped=unmapped)
