"""A synthetic region as downloaded products: S2 L2A SAFEs, EnMAP L2A.

:func:`write_synthetic_products` turns a synthetic region
(:func:`~h2crop.datasets.converters.synthetic_region.make_synthetic_region`:
12 monthly composites, an EnMAP image, parcels) into what a user downloads,
so that ``tools/prepare_region.py`` and ``tools/infer.py --s2-products`` can
be run end to end on a machine without network:

* per month, ``acquisitions`` Sentinel-2 L2A SAFE products (baseline 05.09,
  so the digital numbers carry the +1000 BOA offset stated in
  ``MTD_MSIL2A.xml``; uint16 JPEG 2000 at 10 / 20 m; an SCL band at 20 m)
  whose reflectance is the month's composite with a little noise, and
  whose clouds (SCL 9, bright) cover a random share of the scene -- a
  pixel clouded in every acquisition of a month is a gap the composites
  report and the gap filling fills;
* two EnMAP L2A product folders of the summer (224 bands, the six bad bands
  no-data, reflectance x 10^4 with gain 10^-4) of the region's EnMAP image,
  the later one with a cloud the earlier one fills in the mosaic.

The file formats are those of :mod:`.synthetic_s2` and
:mod:`.synthetic_enmap` (the facts they follow are listed there).
"""
import datetime as dt
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
import rasterio
from rasterio.crs import CRS

from h2crop.constants import NUM_MONTHS, S2_BAND_NAMES

from .s2_metadata import NATIVE_RESOLUTION, product_band
from .synthetic_enmap import (
    BAD_BAND_NUMBERS,
    L2A_WAVELENGTHS,
    make_l2a_product,
)
from .synthetic_s2 import Acquisition, write_safe

#: SCL classes of the synthetic scenes: clear vegetation, high-probability
#: cloud.
SCL_CLEAR, SCL_CLOUD = 4, 9
#: Reflectance (x 10^4) of a cloud in every band.
CLOUD_REFLECTANCE = 7000


def _blobs(rng: np.random.Generator, shape: Sequence[int], share: float
           ) -> np.ndarray:
    """A bool mask of round blobs covering about ``share`` of ``shape``."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    if share <= 0:
        return mask
    yy, xx = np.mgrid[0:h, 0:w]
    radius = max(2.0, 0.12 * min(h, w))
    while mask.mean() < share:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    return mask


def _native(band10: np.ndarray, res: int) -> np.ndarray:
    """A 10 m band (H, W) on a coarser native grid by block means."""
    k = res // 10
    h, w = band10.shape
    # (H, W) -> (H/k, k, W/k, k) -> block means (H/k, W/k)
    blocks = band10[:h - h % k, :w - w % k].reshape(h // k, k, w // k, k)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.int64)


def s2_acquisitions(month_paths: Sequence[str], year: int,
                    acquisitions: int = 2, cloud_share: float = 0.25,
                    noise: float = 30.0, seed: int = 0
                    ) -> List[Acquisition]:
    """Acquisitions whose clear pixels show the monthly composites.

    Args:
        month_paths: 12 composites (10 bands, reflectance x 10^4, 10 m,
            even width and height), January first.
        year: Year of the acquisitions.
        acquisitions: Products per month (on days spread over the month).
        cloud_share: Share of each acquisition under cloud.
        noise: Standard deviation of the per-acquisition noise (x 10^4).
        seed: Random seed.

    Returns:
        The acquisitions, in time order.
    """
    rng = np.random.default_rng([seed, 2024])
    out = []
    for month, path in enumerate(month_paths, start=1):
        with rasterio.open(path) as src:
            comp = src.read().astype(np.float64)  # (10, H, W)
            nodata = src.read_masks(1) == 0
            origin = (src.transform.c, src.transform.f)
            crs = CRS.from_user_input(src.crs)
        h, w = comp.shape[1:]
        if h % 2 or w % 2:
            raise ValueError(f'{path}: {w} x {h} px; the 20 m bands need '
                             'an even width and height')
        for k in range(acquisitions):
            day = 1 + (k + 1) * 27 // (acquisitions + 1)
            when = dt.datetime(year, month, day, 10, 36, 29)
            cloud20 = _blobs(rng, (h // 2, w // 2), cloud_share)
            cloud10 = np.repeat(np.repeat(cloud20, 2, 0), 2, 1)
            refl: Dict[str, np.ndarray] = {}
            for b, name in enumerate(S2_BAND_NAMES):
                band = product_band(name)
                value = comp[b] + rng.normal(0, noise, (h, w))
                value[cloud10] = CLOUD_REFLECTANCE
                value = np.clip(value, 1, 10000)
                refl[band] = _native(value, NATIVE_RESOLUTION[band]) \
                    if NATIVE_RESOLUTION[band] > 10 else \
                    np.rint(value).astype(np.int64)
            scl = np.where(cloud20, SCL_CLOUD, SCL_CLEAR).astype(np.uint8)
            out.append(Acquisition(when, refl, scl, nodata.copy(), origin,
                                   crs))
    return out


def enmap_dn(cube218: np.ndarray) -> np.ndarray:
    """The 224-band L2A image of a 218-band cube (bad bands left 0)."""
    keep = [b for b in range(len(L2A_WAVELENGTHS))
            if b + 1 not in BAD_BAND_NUMBERS]
    dn = np.zeros((len(L2A_WAVELENGTHS), ) + cube218.shape[1:], np.int16)
    dn[keep] = cube218  # (218, h, w) into the kept band positions
    return dn


def write_synthetic_products(out_dir: str, region: Dict[str, object],
                             year: int = 2023, acquisitions: int = 2,
                             cloud_share: float = 0.25,
                             enmap_cloud_share: float = 0.1,
                             seed: int = 0) -> Dict[str, object]:
    """Write a synthetic region's products under ``out_dir``.

    Args:
        out_dir: Folder of ``s2/`` (SAFE products) and ``enmap/`` (L2A
            product folders); created.
        region: What ``make_synthetic_region`` returned.
        year: Year of the products.
        acquisitions: Sentinel-2 products per month.
        cloud_share: Share of each S2 product under cloud.
        enmap_cloud_share: Share of the later EnMAP product under cloud.
        seed: Random seed.

    Returns:
        ``s2``: folder of the SAFE products, ``enmap``: folder of the EnMAP
        products, ``year``, and the region's ``parcels``,
        ``prior_parcels``, ``code_map``, ``code_column``, ``taxonomy``.
    """
    s2_dir = osp.join(out_dir, 's2')
    enmap_dir = osp.join(out_dir, 'enmap')
    os.makedirs(s2_dir, exist_ok=True)
    os.makedirs(enmap_dir, exist_ok=True)
    months = list(region['s2'])
    if len(months) != NUM_MONTHS:
        raise ValueError(f'expected {NUM_MONTHS} monthly composites, got '
                         f'{len(months)}')
    for acq in s2_acquisitions(months, year, acquisitions, cloud_share,
                               seed=seed):
        write_safe(s2_dir, acq)
    from h2crop.geo.grid import read_grid
    grid = read_grid(region['enmap'])
    with rasterio.open(region['enmap']) as src:
        cube = src.read()  # (218, h, w), reflectance x 10^4
    rng = np.random.default_rng([seed, 4242])
    dn = enmap_dn(cube)
    early = dt.datetime(year, 6, 9, 10, 42, 45)
    late = dt.datetime(year, 7, 3, 10, 39, 12)
    make_l2a_product(enmap_dir, grid, early, dn=dn)
    cloud = _blobs(rng, (grid.height, grid.width), enmap_cloud_share)
    bright = dn.copy()
    bright[:, cloud] = CLOUD_REFLECTANCE
    make_l2a_product(enmap_dir, grid, late, dn=bright, tile=4,
                     layers={'QL_QUALITY_CLOUD': cloud.astype(np.uint8)})
    return dict(s2=s2_dir, enmap=enmap_dir, year=year,
                parcels=region['parcels'],
                prior_parcels=region['prior_parcels'],
                code_map=region['code_map'],
                code_column=region['code_column'],
                taxonomy=region['taxonomy'])
