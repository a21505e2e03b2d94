"""Synthetic H2Crop tiles: learnable, realistic-looking stand-ins for the data.

:func:`make_synthetic_dataset` writes ``<out>/h5_data/<id>.h5`` files in the
real layout (dtypes, band counts, 12 months, EnMAP on a 1/3 grid, 4 label and
prior levels) plus ``<out>/data_lists/{train,val,test}.txt``, the taxonomy
used (``<out>/cascade_labels.csv``) and ``<out>/synthetic_info.json``.

How a tile is made:

* Fields are irregular convex-ish polygons (4-7 vertices, random elongation
  and orientation) laid on a jittered grid over a background of non-crop
  land (one of a few background types, plus background patches).
* Each tile holds a few level-4 classes (drawn with a skewed frequency, so
  that over a dataset most classes appear); labels are drawn at level 4 and
  mapped up the taxonomy, so the four levels are always consistent.
* Class signatures are built down the taxonomy: every level perturbs the
  phenology (green-up month, season length, peak greenness) and spectra of
  its parent less than the level above, so coarse levels are easier.
* S2 pixel = mix of a soil and a class vegetation spectrum weighted by the
  class' NDVI-like greenness of the month; EnMAP is the same mix at one
  summer acquisition month over 218 bands, averaged over 3x3 S2 pixels.
* "Twin" classes: for some level-3 classes, a second level-4 child has the
  S2 signature of its first sibling and differs only by a few narrow EnMAP
  absorption features, so only hyperspectral input separates them.
* Per-field jitter, per-month offsets and pixel noise.
* Priors equal the label on most fields and are another level-4 class on a
  fraction ``prior_change_fraction`` of them.

Without a taxonomy file a deterministic strict tree with the paper's counts
(:func:`synthetic_taxonomy`) is used, since the numeric fallback taxonomy
has no hierarchy.
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from h2crop.constants import (
    BACKGROUND_ID,
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_BANDS,
    ENMAP_DTYPE,
    ENMAP_SCALE,
    H5_DIR,
    H5_SUFFIX,
    LABEL_DTYPE,
    LEVELS,
    NUM_CROP_CLASSES,
    NUM_LEVELS,
    NUM_MONTHS,
    PRIOR,
    PRIOR_DTYPE,
    S2,
    S2_BANDS,
    S2_DTYPE,
    SPLITS,
    TAXONOMY_FILE,
    TILE_SIZE,
)
from h2crop.taxonomy import (
    BACKGROUND_NAME,
    Taxonomy,
    load_taxonomy,
    write_taxonomy_csv,
)

from .h5io import LABEL, SPELLINGS, write_tile

#: Default split fractions (train, val, test).
SPLIT_FRACTIONS: Tuple[float, ...] = (0.7, 0.15, 0.15)
#: File written next to ``h5_data``.
INFO_FILE = 'synthetic_info.json'

# S2 band order: constants.S2_BAND_NAMES (B2 .. B12); reflectance x 10000
_S2_SOIL = np.array([1100, 1400, 1700, 1900, 2100, 2250, 2400, 2500, 3000,
                     2600], dtype=np.float32)
_S2_VEG = np.array([350, 700, 380, 1150, 3000, 4100, 4600, 4800, 2300,
                    1200], dtype=np.float32)
# background types: (veg fraction over the year, brightness, name)
_BACKGROUND_TYPES = (('forest', 0.8, 0.9), ('urban', 0.1, 1.5),
                     ('water', 0.0, 0.25), ('shrub', 0.45, 1.0))


@dataclass(frozen=True)
class SyntheticStyle:
    """What a synthetic dataset is made of, beyond the taxonomy and seed.

    Two styles exist (:data:`STYLES`) so that a result shown on one can be
    checked on tiles made differently: other spectra, other absorption
    features, other field shapes and another digital-number scaling.

    Attributes:
        name: Style name.
        s2_soil: S2 soil reflectance x 10000 (B2 .. B12).
        s2_veg: S2 vegetation reflectance x 10000.
        red_edge_nm: Centre of the red edge of the EnMAP vegetation curve.
        nir_level: NIR plateau reflectance of the EnMAP vegetation curve.
        soil_slope: Rise of the EnMAP soil reflectance from 400 to 2500 nm.
        feature_width: Width (bands, Gaussian sigma) of the twins' EnMAP
            absorption features.
        feature_depth: (min, max) relative depth of those features.
        feature_count: (min, max) features per twin, max exclusive.
        fields: ``'polygons'`` (irregular convex-ish polygons on a jittered
            grid) or ``'strips'`` (rotated rectangles: long narrow strips
            of varying width, as in strip farming).
        s2_offset: Added to every S2 digital number (Sentinel-2 L2A
            products of processing baseline 04.00 and later carry +1000).
        enmap_scale: EnMAP digital number per unit reflectance.
    """

    name: str
    s2_soil: Tuple[float, ...]
    s2_veg: Tuple[float, ...]
    red_edge_nm: float
    nir_level: float
    soil_slope: float
    feature_width: float
    feature_depth: Tuple[float, float]
    feature_count: Tuple[int, int]
    fields: str
    s2_offset: int
    enmap_scale: float


#: The generator's styles: ``'default'`` (the demo's tiles) and ``'alt'``.
STYLES: Dict[str, SyntheticStyle] = {
    'default': SyntheticStyle(
        'default', tuple(_S2_SOIL), tuple(_S2_VEG), red_edge_nm=715.,
        nir_level=0.42, soil_slope=0.22, feature_width=1.2,
        feature_depth=(0.12, 0.2), feature_count=(2, 4), fields='polygons',
        s2_offset=0, enmap_scale=1e4),
    'alt': SyntheticStyle(
        'alt', (800, 1050, 1350, 1600, 1800, 1900, 2050, 2150, 2700, 2300),
        (250, 560, 300, 980, 2600, 3600, 4100, 4300, 2600, 1500),
        red_edge_nm=705., nir_level=0.36, soil_slope=0.3,
        feature_width=2.5, feature_depth=(0.08, 0.14), feature_count=(1, 3),
        fields='strips', s2_offset=1000, enmap_scale=8e3),
}


def synthetic_taxonomy(seed: int = 0,
                       counts: Sequence[int] = NUM_CROP_CLASSES) -> Taxonomy:
    """A deterministic strict tree with ``counts`` crop classes per level.

    Every level-k class has at least one child at level k+1; the remaining
    children are spread at random (seeded).

    Args:
        seed: Random seed of the tree.
        counts: Crop classes per level, coarse to fine (non-decreasing).
    """
    if len(counts) != NUM_LEVELS or any(
            b < a for a, b in zip(counts, counts[1:])) or min(counts) < 1:
        raise ValueError(f'counts {tuple(counts)} must be {NUM_LEVELS} '
                         'positive, non-decreasing numbers')
    rng = np.random.default_rng([seed, 7919])
    names, parents = [], [None]
    for k, lv in enumerate(LEVELS):
        names.append([BACKGROUND_NAME] +
                     [f'synthetic_{lv}_{i}' for i in range(1, counts[k] + 1)])
        if k:
            n_par, n = counts[k - 1], counts[k]
            par = np.concatenate([np.arange(1, n_par + 1),
                                  rng.integers(1, n_par + 1, n - n_par)])
            par = np.sort(par)  # children of a parent get neighbouring ids
            parents.append(np.concatenate([[BACKGROUND_ID], par]))
    codes = [''] + [f'99{i:08d}' for i in range(1, counts[-1] + 1)]
    return Taxonomy(names, parents, codes, source=f'synthetic(seed={seed})')


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _ClassModel:
    """Per-class phenology and spectra, built down the taxonomy."""

    def __init__(self, taxonomy: Taxonomy, seed: int,
                 style: SyntheticStyle = STYLES['default']) -> None:
        if not taxonomy.has_hierarchy:
            raise ValueError('the synthetic generator needs a taxonomy with '
                             'a hierarchy (a CSV or synthetic_taxonomy())')
        rng = np.random.default_rng([seed, 104729])
        self.taxonomy = taxonomy
        self.style = style
        n4 = taxonomy.num_classes[-1]  # incl. background
        self.wavelengths = np.linspace(420., 2450., ENMAP_BANDS,
                                       dtype=np.float32)
        lam = self.wavelengths
        self.hs_soil = (0.09 + style.soil_slope * (lam - 400) / 2100 -
                        0.03 * np.exp(-((lam - 2200) / 60)**2)) * 1e4
        self.hs_soil = self.hs_soil.astype(np.float32)
        # generic vegetation: green bump, red well, red edge, NIR plateau,
        # water absorptions in the SWIR
        veg = (0.04 + 0.04 * np.exp(-((lam - 550) / 35)**2) +
               style.nir_level * _sigmoid((lam - style.red_edge_nm) / 18) -
               0.20 * _sigmoid((lam - 1330) / 40) -
               0.10 * np.exp(-((lam - 1450) / 60)**2) -
               0.12 * np.exp(-((lam - 1940) / 80)**2) -
               0.05 * _sigmoid((lam - 2000) / 60))
        self.hs_veg = (np.clip(veg, 0.01, None) * 1e4).astype(np.float32)

        # parameters per level: (green-up month, season length, peak,
        # S2 veg spectrum scale (10), EnMAP smooth modulation (218))
        sd = [(2.5, 1.5, 0.15, 0.12, 0.08), (1.0, 0.7, 0.07, 0.06, 0.04),
              (0.6, 0.5, 0.05, 0.04, 0.03), (0.5, 0.4, 0.04, 0.03, 0.02)]
        prev = None
        for k in range(NUM_LEVELS):
            n = taxonomy.num_classes[k]
            s = sd[k]
            if k == 0:
                base = dict(g=rng.uniform(-2., 6., n),
                            length=rng.uniform(3., 7., n),
                            peak=rng.uniform(0.55, 0.9, n),
                            s2=np.ones((n, S2_BANDS), np.float32),
                            hs=np.ones((n, ENMAP_BANDS), np.float32))
            else:
                par = taxonomy.parents[k]
                base = {key: val[par].copy() for key, val in prev.items()}
            base['g'] = base['g'] + rng.normal(0, s[0], n)
            base['length'] = np.clip(base['length'] + rng.normal(0, s[1], n),
                                     2., 9.)
            base['peak'] = np.clip(base['peak'] + rng.normal(0, s[2], n), 0.3,
                                   0.97)
            base['s2'] = base['s2'] * (1 + rng.normal(
                0, s[3], (n, S2_BANDS))).astype(np.float32)
            base['hs'] = base['hs'] * self._smooth_modulation(rng, n, s[4])
            prev = base
        self.params = prev  # level-4 arrays of length n4

        # twins: siblings with the S2 signature of their first sibling and
        # a few narrow EnMAP absorption features of their own
        self.twin_of = np.zeros(n4, dtype=np.int64)
        self.narrow = np.ones((n4, ENMAP_BANDS), dtype=np.float32)
        par3 = taxonomy.parents[-1]
        band = np.arange(ENMAP_BANDS, dtype=np.float32)
        for p in np.unique(par3[1:]):
            children = np.flatnonzero(par3 == p)
            children = children[children != BACKGROUND_ID]
            for child in children[1:]:
                if rng.random() < 0.5:
                    first = children[0]
                    self.twin_of[child] = first
                    for key in ('g', 'length', 'peak', 's2'):
                        self.params[key][child] = self.params[key][first]
                    self.params['hs'][child] = self.params['hs'][first]
                    for _ in range(rng.integers(*style.feature_count)):
                        centre = rng.uniform(20, ENMAP_BANDS - 20)
                        depth = rng.uniform(*style.feature_depth)
                        self.narrow[child] *= 1 - depth * np.exp(
                            -0.5 * ((band - centre) / style.feature_width)**2)
        # skewed class frequency (a fixed random rank per class)
        rank = rng.permutation(n4 - 1)
        weights = 1.0 / (rank + 4.0)
        self.class_p = weights / weights.sum()

    @staticmethod
    def _smooth_modulation(rng: np.random.Generator, n: int,
                           sd: float) -> np.ndarray:
        """(n, 218) factors near 1 made of three broad bumps each."""
        band = np.arange(ENMAP_BANDS, dtype=np.float32)
        centres = rng.uniform(0, ENMAP_BANDS, (n, 3, 1))
        widths = rng.uniform(15, 45, (n, 3, 1))
        amps = rng.normal(0, sd, (n, 3, 1))
        bumps = amps * np.exp(-0.5 * ((band - centres) / widths)**2)
        return (1 + bumps.sum(axis=1)).astype(np.float32)

    def greenness(self, cls: np.ndarray, g_shift: np.ndarray,
                  peak_scale: np.ndarray) -> np.ndarray:
        """NDVI-like vegetation fraction (P, 12) of fields of class ``cls``."""
        months = np.arange(NUM_MONTHS, dtype=np.float32)
        g = (self.params['g'][cls] + g_shift)[:, None]
        end = g + self.params['length'][cls][:, None]
        v = _sigmoid((months - g) / 0.6) * _sigmoid((end - months) / 0.6)
        peak = np.clip(self.params['peak'][cls] * peak_scale, 0, 0.98)
        return (0.06 + peak[:, None] * v).astype(np.float32)


class _TileMaker:
    """Draws single tiles for a fixed class model."""

    def __init__(self, model: _ClassModel, size: int,
                 prior_change_fraction: float) -> None:
        self.model = model
        self.size = size
        self.prior_change_fraction = prior_change_fraction
        tax = model.taxonomy
        fine = NUM_LEVELS - 1
        # (4, N4+1): level-4 id -> id at each level
        self.lut = np.stack([tax.ancestor_map(fine, k)
                             for k in range(NUM_LEVELS)]).astype(np.uint8)

    # ------------------------------------------------------------ geometry
    def _polygon(self, rng: np.random.Generator, cy: float, cx: float,
                 radius: float) -> np.ndarray:
        """Vertices (n, 2) as (y, x) of an irregular, elongated polygon."""
        n = int(rng.integers(4, 8))
        ang = (rng.uniform(0, 2 * np.pi) + np.linspace(0, 2 * np.pi, n,
                                                        endpoint=False) +
               rng.uniform(-0.3, 0.3, n) * np.pi / n)
        r = radius * rng.uniform(0.8, 1.0, n)
        stretch = rng.uniform(0.6, 1.4)
        rot = rng.uniform(0, np.pi)
        y, x = r * np.sin(ang) * stretch, r * np.cos(ang) / stretch
        ys = cy + y * np.cos(rot) - x * np.sin(rot)
        xs = cx + y * np.sin(rot) + x * np.cos(rot)
        return np.stack([ys, xs], axis=1)

    def _fill(self, pid: np.ndarray, poly: np.ndarray, value: int) -> None:
        """Set pixels of ``pid`` whose centres are inside ``poly`` to value."""
        size = pid.shape[0]
        y0, x0 = np.maximum(np.floor(poly.min(axis=0)).astype(int), 0)
        y1, x1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 1, size)
        if y1 <= y0 or x1 <= x0:
            return
        py = (np.arange(y0, y1, dtype=np.float32) + 0.5)[:, None]
        px = (np.arange(x0, x1, dtype=np.float32) + 0.5)[None, :]
        inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        for (ya, xa), (yb, xb) in zip(poly, np.roll(poly, -1, axis=0)):
            if ya == yb:
                continue
            crosses = (ya > py) != (yb > py)
            x_at = xa + (py - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (px < x_at)
        pid[y0:y1, x0:x1][inside] = value

    def _strips(self, rng: np.random.Generator, pid: np.ndarray,
                first_id: int) -> int:
        """Lay strip fields over ``pid``; return how many ids were used.

        The tile is cut into parallel strips (5-14 px wide) at a random
        orientation, each strip into segments (12-40 px long); 85 % of the
        segments become fields ``first_id, first_id + 1, ...``, separated
        from their neighbours by a one-pixel margin of background.
        """
        size = pid.shape[0]
        theta = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5 - size / 2
        across = -yy * np.sin(theta) + xx * np.cos(theta)  # (H, W)
        along = yy * np.cos(theta) + xx * np.sin(theta)  # (H, W)
        reach = size * 0.75
        edges = [-reach]
        while edges[-1] < reach:
            edges.append(edges[-1] + rng.uniform(5., 14.))
        used = 0
        for lo, hi in zip(edges[:-1], edges[1:]):
            in_strip = (across > lo + 0.5) & (across < hi - 0.5)
            cut = -reach - rng.uniform(0., 40.)
            while cut < reach:
                nxt = cut + rng.uniform(12., 40.)
                keep = rng.random() < 0.85
                if keep:
                    inside = in_strip & (along > cut + 0.5) & (along <
                                                               nxt - 0.5)
                    pid[inside] = first_id + used
                    used += 1
                cut = nxt
        return used

    # ------------------------------------------------------------ tile
    def make(self, rng: np.random.Generator) -> Dict[str, np.ndarray]:
        """One tile: arrays keyed by content (s2, enmap, label, prior)."""
        model, size = self.model, self.size
        n_bg_types = len(_BACKGROUND_TYPES)
        # field id map; ids 0..n_bg_types-1 are background types
        pid = np.full((size, size), rng.integers(n_bg_types), dtype=np.int32)
        next_id = n_bg_types
        for _ in range(rng.integers(0, 3)):  # background patches
            poly = self._polygon(rng, *rng.uniform(0, size, 2),
                                 size * rng.uniform(0.1, 0.3))
            self._fill(pid, poly, int(rng.integers(n_bg_types)))
        # classes of this tile (skewed; twins tend to come with a sibling)
        n_cls = int(rng.integers(2, 7))
        classes = list(1 + rng.choice(len(model.class_p), n_cls,
                                      replace=False, p=model.class_p))
        for c in list(classes):
            twin = int(model.twin_of[c])
            if twin and twin not in classes and rng.random() < 0.5:
                classes.append(twin)
        field_cls = []
        if model.style.fields == 'strips':
            for _ in range(self._strips(rng, pid, next_id)):
                field_cls.append(classes[rng.integers(len(classes))])
        else:
            cell = size * rng.uniform(0.1, 0.19)
            n_cells = int(np.ceil(size / cell))
            for i in range(n_cells):
                for j in range(n_cells):
                    if rng.random() > 0.85:
                        continue
                    cy, cx = (np.array([i, j]) + 0.5 +
                              rng.uniform(-0.15, 0.15, 2)) * cell
                    poly = self._polygon(rng, cy, cx,
                                         cell * rng.uniform(0.5, 0.75))
                    self._fill(pid, poly, next_id)
                    field_cls.append(classes[rng.integers(len(classes))])
                    next_id += 1
        n_fields = len(field_cls)
        n_ids = n_bg_types + n_fields
        cls = np.asarray(field_cls, dtype=np.int64).reshape(n_fields)

        # labels and priors per field id, then per pixel
        leaf = np.zeros(n_ids, dtype=np.int64)
        leaf[n_bg_types:] = cls
        prior_leaf = leaf.copy()
        change = rng.random(n_fields) < self.prior_change_fraction
        for f in np.flatnonzero(change):
            other = cls[f]
            while other == cls[f]:
                other = 1 + rng.choice(len(model.class_p), p=model.class_p)
            prior_leaf[n_bg_types + f] = other
        label = self.lut[:, leaf][:, pid]  # (4, H, W)
        prior = self.lut[:, prior_leaf][:, pid]  # (4, H, W)

        # greenness per field id and month (P, 12)
        green = np.empty((n_ids, NUM_MONTHS), dtype=np.float32)
        bright = np.empty(n_ids, dtype=np.float32)
        for b, (_, veg, br) in enumerate(_BACKGROUND_TYPES):
            green[b] = veg
            bright[b] = br
        green[n_bg_types:] = model.greenness(
            cls, rng.normal(0, 0.3, n_fields),
            rng.uniform(0.92, 1.08, n_fields))
        bright[n_bg_types:] = rng.uniform(0.93, 1.07, n_fields)
        s2_veg = np.ones((n_ids, S2_BANDS), dtype=np.float32)
        s2_veg[n_bg_types:] = model.params['s2'][cls]
        # S2 table (12, 10, P) -> pixels (12, 10, H, W)
        style = model.style
        soil = np.asarray(style.s2_soil, dtype=np.float32)
        veg = np.asarray(style.s2_veg, dtype=np.float32)
        table = (soil[None, :, None] * (1 - green.T[:, None, :]) +
                 veg[None, :, None] * s2_veg.T[None] *
                 green.T[:, None, :]) * bright[None, None, :]
        table += rng.normal(0, 60, (NUM_MONTHS, 1, 1)).astype(np.float32)
        s2 = table[:, :, pid]
        s2 += rng.normal(0, 70, s2.shape).astype(np.float32)
        s2 = (np.clip(s2, 0, 10000) + style.s2_offset).astype(S2_DTYPE)

        # EnMAP at a summer month: (218, P) spectra mixed over 3x3 blocks
        month = int(rng.integers(4, 8))
        hs_veg = np.ones((n_ids, ENMAP_BANDS), dtype=np.float32)
        hs_veg[n_bg_types:] = (model.params['hs'][cls] *
                               model.narrow[cls])
        gm = green[:, month][:, None]
        spectra = ((model.hs_soil[None] * (1 - gm) +
                    model.hs_veg[None] * hs_veg * gm) *
                   bright[:, None]).T  # (218, P)
        small = size // ENMAP_SCALE
        block = ((np.arange(size) // ENMAP_SCALE)[:, None] * small +
                 (np.arange(size) // ENMAP_SCALE)[None, :])
        counts = np.bincount((block * n_ids + pid).ravel(),
                             minlength=small * small * n_ids)
        frac = counts.reshape(small * small, n_ids).astype(
            np.float32) / ENMAP_SCALE**2  # (h*w, P)
        enmap = (spectra.astype(np.float32) @ frac.T).reshape(
            ENMAP_BANDS, small, small) * np.float32(style.enmap_scale / 1e4)
        enmap += rng.normal(0, 25, enmap.shape).astype(np.float32)
        enmap = np.clip(enmap, 0, 10000).astype(ENMAP_DTYPE)
        return {S2: s2, ENMAP: enmap,
                LABEL: np.ascontiguousarray(label, dtype=LABEL_DTYPE),
                PRIOR: np.ascontiguousarray(prior, dtype=PRIOR_DTYPE)}


def split_ids(ids: Sequence[str], rng: np.random.Generator,
              fractions: Sequence[float] = SPLIT_FRACTIONS
              ) -> Dict[str, List[str]]:
    """Shuffle ids into train/val/test; every split non-empty for >= 3 ids."""
    n = len(ids)
    order = [ids[i] for i in rng.permutation(n)]
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    n_train = n - n_val - n_test
    return {SPLITS[0]: sorted(order[:n_train]),
            SPLITS[1]: sorted(order[n_train:n_train + n_val]),
            SPLITS[2]: sorted(order[n_train + n_val:])}


def make_synthetic_dataset(out_dir: str,
                           num_samples: int,
                           size: int = TILE_SIZE,
                           seed: int = 0,
                           taxonomy: Union[None, str, Taxonomy] = None,
                           prior_change_fraction: float = 0.2,
                           spelling: str = 'loader',
                           id_prefix: str = 'synthetic',
                           style: str = 'default') -> Dict:
    """Write a synthetic dataset in the H2Crop layout.

    Args:
        out_dir: Output data root (created).
        num_samples: Number of tiles (>= 3 so that every split is non-empty).
        size: Tile side in S2 pixels; a multiple of 3.
        seed: Seed; the output is a deterministic function of all arguments.
        taxonomy: A ``cascade_labels.csv`` path, a Taxonomy, or None for
            :func:`synthetic_taxonomy` (``seed``) with the paper's counts.
        prior_change_fraction: Fraction of fields whose prior differs.
        spelling: H5 names: ``'loader'`` (S2_data, EnMAP_data, priors),
            ``'readme'`` (S2, EnMAP, prior) or ``'mixed'`` (alternating).
        id_prefix: Sample ids are ``f'{id_prefix}_{i:06d}'``.
        style: A :data:`STYLES` name: ``'default'`` or ``'alt'`` (other
            spectra, absorption features, strip fields, S2 with the L2A
            +1000 offset, EnMAP scaled by 8000), to check that a result
            does not depend on how the default tiles are made.

    Returns:
        dict with ``out_dir``, ``splits`` (name -> ids), ``taxonomy_file``,
        ``twins`` (list of (level-4 id, its S2 twin)).
    """
    if size <= 0 or size % ENMAP_SCALE:
        raise ValueError(f'size {size} must be a positive multiple of '
                         f'{ENMAP_SCALE} (EnMAP is on a 1/3 grid)')
    if num_samples < len(SPLITS):
        raise ValueError(f'num_samples {num_samples} < {len(SPLITS)}: every '
                         'split needs a tile')
    if not 0 <= prior_change_fraction <= 1:
        raise ValueError('prior_change_fraction must be in [0, 1]')
    if style not in STYLES:
        raise ValueError(f'style {style!r}; expected one of {tuple(STYLES)}')
    if spelling not in (*SPELLINGS, 'mixed'):
        raise ValueError(f'spelling {spelling!r}; expected one of '
                         f'{(*SPELLINGS, "mixed")}')
    if taxonomy is None:
        tax = synthetic_taxonomy(seed)
    elif isinstance(taxonomy, Taxonomy):
        tax = taxonomy
    else:
        tax = load_taxonomy(taxonomy)
    if max(tax.num_classes) > np.iinfo(LABEL_DTYPE).max + 1:
        raise ValueError(f'{tax.source}: too many classes for {LABEL_DTYPE}')

    h5_dir = osp.join(out_dir, H5_DIR)
    lists_dir = osp.join(out_dir, DATA_LISTS_DIR)
    os.makedirs(h5_dir, exist_ok=True)
    os.makedirs(lists_dir, exist_ok=True)
    tax_file = osp.join(out_dir, TAXONOMY_FILE)
    if isinstance(taxonomy, str):
        if osp.abspath(taxonomy) != osp.abspath(tax_file):
            shutil.copyfile(taxonomy, tax_file)
    else:
        write_taxonomy_csv(tax, tax_file)

    maker = _TileMaker(_ClassModel(tax, seed, STYLES[style]), size,
                       prior_change_fraction)
    ids = [f'{id_prefix}_{i:06d}' for i in range(num_samples)]
    names = list(SPELLINGS)
    for i, sid in enumerate(ids):
        arrays = maker.make(np.random.default_rng([seed, i]))
        spell = names[i % len(names)] if spelling == 'mixed' else spelling
        write_tile(osp.join(h5_dir, sid + H5_SUFFIX), arrays, spell)
    splits = split_ids(ids, np.random.default_rng([seed, 15485863]))
    for name, members in splits.items():
        with open(osp.join(lists_dir, f'{name}.txt'), 'w') as f:
            f.write(''.join(f'{sid}\n' for sid in members))
    twins = [(int(c), int(t)) for c, t in enumerate(maker.model.twin_of)
             if t]
    info = dict(num_samples=num_samples, size=size, seed=seed,
                prior_change_fraction=prior_change_fraction,
                spelling=spelling, style=style, taxonomy=tax.source,
                num_crop_classes=list(tax.num_crop_classes), twins=twins,
                splits={k: len(v) for k, v in splits.items()})
    with open(osp.join(out_dir, INFO_FILE), 'w') as f:
        json.dump(info, f, indent=1)
    return dict(out_dir=out_dir, splits=splits, taxonomy_file=tax_file,
                twins=twins, taxonomy=tax)
