"""Parcel vectors: reading, crop-code mapping, rasterisation and reports.

Parcels are read with pyogrio (GeoPackage, Shapefile, GeoParquet, anything
GDAL reads) into shapely 2 geometries, reprojected to the raster CRS when
needed, and rasterised per tile with the pixel-centre rule (a pixel belongs
to a parcel when its centre lies inside; ``all_touched=False``).

Parcel ids are 1-based positions in file order (``0`` = no parcel), stored
as uint32; where parcels overlap, the later one in file order wins.

A crop code reaches the four taxonomy levels through the taxonomy's HCAT3
codes, optionally after a ``--code-map`` from local codes (e.g. national
declaration codes) to HCAT3 codes (:func:`load_code_map`): a CSV with the
columns ``local_code`` and ``HCAT3_code`` (lines starting with ``#`` are
comments), or a preset: ``eurocrops`` (EuroCrops files, whose
``EC_hcat_c`` already holds HCAT3 codes) or ``rpg`` (the French RPG's
``CODE_CULTU`` through the CSV shipped in ``code_maps/``). Without
``--code-column`` the column follows the preset, and a EuroCrops country
file is recognised by its ``EC_hcat_c`` column (:func:`resolve_code_column`).
Codes that map to nothing become background and are reported
(:func:`unmapped_rows`).
"""
import csv
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pyogrio.raw
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.warp import transform_geom

from h2crop.constants import LABEL_DTYPE, NUM_LEVELS, PARCEL_ID_DTYPE
from h2crop.taxonomy import Taxonomy

#: Columns of a ``--code-map`` CSV.
CODE_MAP_COLUMNS: Tuple[str, str] = ('local_code', 'HCAT3_code')
#: ``--code-map`` presets.
EUROCROPS = 'eurocrops'
RPG = 'rpg'
#: Attributes EuroCrops adds to every country file: the original name in
#: English, the HCAT3 class name and the HCAT3 code.
EC_TRANS_NAME, EC_HCAT_NAME, EC_HCAT_CODE = ('EC_trans_n', 'EC_hcat_n',
                                             'EC_hcat_c')
#: The RPG's crop code attribute.
RPG_CODE_COLUMN = 'CODE_CULTU'
#: Folder of the code maps shipped with the package.
CODE_MAP_DIR = osp.join(osp.dirname(osp.abspath(__file__)), 'code_maps')
#: The ``rpg`` preset: RPG ``CODE_CULTU`` -> HCAT3 (sources in its header).
RPG_CODE_MAP = osp.join(CODE_MAP_DIR, 'rpg_code_cultu_hcat3.csv')
#: Code column each preset reads by default.
PRESET_COLUMNS: Dict[str, str] = {EUROCROPS: EC_HCAT_CODE,
                                  RPG: RPG_CODE_COLUMN}
#: Reasons in the unmapped-code report.
NO_CODE_MAP_ENTRY = 'not in code map'
NO_TAXONOMY_CLASS = 'HCAT3 code not in taxonomy'
EMPTY_CODE = 'empty code'


class ParcelDataError(ValueError):
    """A parcel file or a code map is missing, unreadable or inconsistent.

    The message names the file and, where one is involved, the column.
    """


def normalise_code(value) -> str:
    """A crop code as text: integers lose a ``.0``, blanks are stripped."""
    if value is None:
        return ''
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return ''
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'replace')
    return str(value).strip()


@dataclass
class Parcels:
    """Parcels of one year on the raster CRS.

    Attributes:
        path: The vector file.
        geometries: shapely geometries, shape (P,), in the raster CRS.
        codes: The crop code of every parcel as text, shape (P,).
        fids: Feature ids of the file, shape (P,).
        paths: Taxonomy ids per parcel, uint8 (P + 1, 4); row 0 (no
            parcel) and parcels whose code maps to nothing are all 0.
        reasons: Per parcel why its code maps to nothing ('' if mapped).
        hcat3: Per parcel the HCAT3 code used ('' if none).
    """

    path: str
    geometries: np.ndarray
    codes: np.ndarray
    fids: np.ndarray
    paths: np.ndarray = field(default=None)
    reasons: np.ndarray = field(default=None)
    hcat3: np.ndarray = field(default=None)
    _tree: Optional[shapely.STRtree] = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def tree(self) -> shapely.STRtree:
        """Spatial index of the geometries (built on first use)."""
        if self._tree is None:
            self._tree = shapely.STRtree(self.geometries)
        return self._tree

    @property
    def areas(self) -> np.ndarray:
        """Area of every parcel in squared CRS units, shape (P,)."""
        return shapely.area(self.geometries)


def read_parcels(path: str, code_column: str, crs: Optional[CRS] = None,
                 layer: Optional[str] = None) -> Parcels:
    """Read parcel polygons and their crop code.

    Args:
        path: Vector file (GeoPackage, Shapefile, GeoParquet, ...).
        code_column: Attribute holding the crop code.
        crs: Target CRS (the rasters'); None keeps the file's.
        layer: Layer name for multi-layer files; None reads the first.

    Raises:
        ParcelDataError: For a missing file, a missing column (listing the
            available ones), a file without CRS when reprojection is needed,
            or non-polygon geometries.
    """
    columns = parcel_columns(path, layer)
    if code_column not in columns:
        raise ParcelDataError(f'{path}: no column {code_column!r} (the '
                              f'--code-column); columns are {columns}')
    meta, fids, wkb, field_data = pyogrio.raw.read(
        path, layer=layer, columns=[code_column], return_fids=True)
    geoms = shapely.from_wkb(wkb)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise ParcelDataError(f'{path}: {int(missing.sum())} feature(s) '
                              f'without geometry, e.g. fid '
                              f'{int(fids[np.flatnonzero(missing)[0]])}')
    kinds = set(shapely.get_type_id(geoms).tolist())
    polygonal = {shapely.GeometryType.POLYGON,
                 shapely.GeometryType.MULTIPOLYGON}
    if not kinds <= {int(k) for k in polygonal}:
        raise ParcelDataError(f'{path}: expected (multi)polygons, found '
                              f'geometry types {sorted(kinds)}')
    src_crs = meta.get('crs')
    if crs is not None:
        if src_crs is None:
            raise ParcelDataError(f'{path}: the file has no CRS; cannot put '
                                  'the parcels on the rasters\' grid')
        src = CRS.from_user_input(src_crs)
        if src != crs:
            # GeoJSON-like dicts -> transformed dicts -> shapely
            mapped = transform_geom(src, crs, [
                shapely.geometry.mapping(g) for g in geoms])
            geoms = np.array([shapely.geometry.shape(g) for g in mapped],
                             dtype=object)
    geoms = shapely.make_valid(geoms)
    codes = np.array([normalise_code(v) for v in field_data[0]],
                     dtype=object)
    return Parcels(path=path, geometries=geoms, codes=codes,
                   fids=np.asarray(fids, dtype=np.int64))


def read_code_map(path: str) -> Dict[str, str]:
    """Read a local-code -> HCAT3-code CSV (:data:`CODE_MAP_COLUMNS`).

    Lines whose first character is ``#`` are comments (a map's sources);
    other columns than :data:`CODE_MAP_COLUMNS` (labels, names) are
    ignored.

    Raises:
        ParcelDataError: For a missing file or column, or a local code
            mapped to two different HCAT3 codes (naming the lines).
    """
    if not osp.isfile(path):
        raise ParcelDataError(f'{path}: code map not found')
    with open(path, newline='', encoding='utf-8') as f:
        numbered = [(n, line) for n, line in enumerate(f, start=1)
                    if not line.startswith('#')]
    mapping: Dict[str, str] = {}
    lines: Dict[str, int] = {}
    reader = csv.DictReader(line for _, line in numbered)
    missing = [c for c in CODE_MAP_COLUMNS
               if c not in (reader.fieldnames or [])]
    if missing:
        raise ParcelDataError(f'{path}: missing column(s) {missing}; '
                              f'expected a header {CODE_MAP_COLUMNS}')
    for (line, _), row in zip(numbered[1:], reader):
        local = normalise_code(row[CODE_MAP_COLUMNS[0]])
        hcat = normalise_code(row[CODE_MAP_COLUMNS[1]])
        if not local:
            continue
        if mapping.setdefault(local, hcat) != hcat:
            raise ParcelDataError(
                f'{path}:{line}: local code {local!r} maps to {hcat!r} '
                f'here and to {mapping[local]!r} at line {lines[local]}')
        lines.setdefault(local, line)
    return mapping


@dataclass(frozen=True)
class CodeMap:
    """What ``--code-map`` stands for.

    Attributes:
        name: ``'eurocrops'``, ``'rpg'``, the CSV path, or ``''`` (none).
        mapping: Local code -> HCAT3 code; None when the codes already are
            HCAT3 codes.
        code_column: The column the codes are read from unless
            ``--code-column`` says otherwise (None: no default).
    """

    name: str
    mapping: Optional[Dict[str, str]]
    code_column: Optional[str]


def load_code_map(spec: Optional[str]) -> CodeMap:
    """Resolve a ``--code-map`` value: a preset name or a CSV path.

    Args:
        spec: ``'eurocrops'`` (identity: EuroCrops' ``EC_hcat_c`` holds
            HCAT3 codes), ``'rpg'`` (:data:`RPG_CODE_MAP`), a CSV path, or
            None / ``''`` (the codes are HCAT3 codes).

    Raises:
        ParcelDataError: For a CSV that :func:`read_code_map` refuses.
    """
    if not spec:
        return CodeMap('', None, None)
    key = spec.strip().lower()
    if key == EUROCROPS and not osp.exists(spec):
        return CodeMap(EUROCROPS, None, PRESET_COLUMNS[EUROCROPS])
    if key == RPG and not osp.exists(spec):
        return CodeMap(RPG, read_code_map(RPG_CODE_MAP),
                       PRESET_COLUMNS[RPG])
    return CodeMap(spec, read_code_map(spec), None)


def parcel_columns(path: str, layer: Optional[str] = None) -> List[str]:
    """Attribute names of a vector file.

    Raises:
        ParcelDataError: For a missing or unreadable file, or GeoParquet
            without a Parquet driver.
    """
    if not osp.exists(path):
        raise ParcelDataError(f'{path}: parcel file not found')
    if path.lower().endswith(('.parquet', '.geoparquet')) and \
            'Parquet' not in pyogrio.list_drivers():
        raise ParcelDataError(
            f'{path}: this GDAL build (pyogrio wheel) has no Parquet driver; '
            'convert the file first, e.g. `ogr2ogr parcels.gpkg '
            f'{osp.basename(path)}`')
    try:
        return list(pyogrio.read_info(path, layer=layer)['fields'])
    except Exception as err:  # pyogrio raises its own DataSourceError types
        raise ParcelDataError(f'{path}: cannot read as vector data: '
                              f'{err}') from err


def find_column(columns: Sequence[str], name: str) -> Optional[str]:
    """``name`` among ``columns``, else its only case-insensitive match."""
    if name in columns:
        return name
    folded = [c for c in columns if c.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def resolve_code_column(path: str, code_column: Optional[str],
                        code_map: CodeMap,
                        layer: Optional[str] = None) -> str:
    """The attribute that holds a parcel file's crop codes.

    ``--code-column`` when given (matched case-insensitively when the exact
    name is absent), else the preset's column (``CODE_CULTU`` for ``rpg``,
    ``EC_hcat_c`` for ``eurocrops``), else ``EC_hcat_c`` when the file is a
    EuroCrops country file.

    Raises:
        ParcelDataError: Naming the file, the column looked for and the
            columns present; also when ``EC_hcat_c`` (HCAT3 codes already)
            would go through a code map of local codes.
    """
    columns = parcel_columns(path, layer)
    if code_column:
        found = find_column(columns, code_column)
        if found is None:
            raise ParcelDataError(f'{path}: no column {code_column!r} (the '
                                  f'--code-column); columns are {columns}')
    elif code_map.code_column:
        found = find_column(columns, code_map.code_column)
        if found is None:
            raise ParcelDataError(
                f'{path}: --code-map {code_map.name} reads the codes from '
                f'{code_map.code_column!r}, which this file lacks; columns '
                f'are {columns} (pass --code-column)')
    else:
        found = find_column(columns, EC_HCAT_CODE)
        if found is None:
            raise ParcelDataError(
                f'{path}: no --code-column given and not a EuroCrops file '
                f'(no {EC_HCAT_CODE!r} column); columns are {columns}')
    if found.lower() == EC_HCAT_CODE.lower() and \
            code_map.mapping is not None:
        raise ParcelDataError(
            f'{path}: {found!r} holds HCAT3 codes already; drop --code-map '
            f'{code_map.name} (or use --code-map {EUROCROPS})')
    return found


def code_map_summary(mapping: Optional[Dict[str, str]],
                     taxonomy: Taxonomy) -> Dict[str, object]:
    """How much of a code map reaches the taxonomy's classes.

    Returns:
        ``entries`` (local codes), ``to_taxonomy`` (local codes whose HCAT3
        code is a class of the taxonomy), ``classes_reached`` (distinct
        classes those reach), ``classes`` (classes of the taxonomy); for an
        identity map (None) only ``classes``.
    """
    classes = taxonomy.code_paths()
    if mapping is None:
        return dict(entries=None, to_taxonomy=None, classes_reached=None,
                    classes=len(classes))
    reached = [h for h in mapping.values() if h in classes]
    return dict(entries=len(mapping), to_taxonomy=len(reached),
                classes_reached=len(set(reached)), classes=len(classes))


def map_codes(parcels: Parcels, taxonomy: Taxonomy,
              code_map: Optional[Dict[str, str]] = None) -> Parcels:
    """Fill ``parcels.paths``, ``reasons`` and ``hcat3`` from the codes.

    Args:
        parcels: Parcels with codes.
        taxonomy: The taxonomy with HCAT3 codes.
        code_map: Optional local code -> HCAT3 code; without it the codes
            are HCAT3 codes.

    Returns:
        ``parcels`` itself, updated.
    """
    code_paths = taxonomy.code_paths()
    n = len(parcels)
    paths = np.zeros((n + 1, NUM_LEVELS), dtype=LABEL_DTYPE)
    reasons = np.full(n, '', dtype=object)
    hcat3 = np.full(n, '', dtype=object)
    for i, code in enumerate(parcels.codes):
        if not code:
            reasons[i] = EMPTY_CODE
            continue
        hcat = code
        if code_map is not None:
            if code not in code_map:
                reasons[i] = NO_CODE_MAP_ENTRY
                continue
            hcat = code_map[code]
        hcat3[i] = hcat
        ids = code_paths.get(hcat)
        if ids is None:
            reasons[i] = NO_TAXONOMY_CLASS
            continue
        paths[i + 1] = ids
    parcels.paths, parcels.reasons, parcels.hcat3 = paths, reasons, hcat3
    return parcels


def unmapped_rows(parcels: Parcels, year: str) -> List[dict]:
    """One report row per code that maps to nothing.

    Args:
        parcels: Parcels after :func:`map_codes`.
        year: ``'current'`` or ``'prior'``, for the report.

    Returns:
        Rows with ``year``, ``code``, ``hcat3_code``, ``reason``,
        ``parcels`` (count) and ``area`` (squared CRS units, e.g. m²),
        largest area first.
    """
    areas = parcels.areas
    rows: Dict[Tuple[str, str], dict] = {}
    for i in np.flatnonzero(parcels.reasons != ''):
        key = (parcels.codes[i], parcels.reasons[i])
        row = rows.setdefault(key, dict(
            year=year, code=parcels.codes[i], hcat3_code=parcels.hcat3[i],
            reason=parcels.reasons[i], parcels=0, area=0.0))
        row['parcels'] += 1
        row['area'] += float(areas[i])
    return sorted(rows.values(), key=lambda r: -r['area'])


def find_overlaps(parcels: Parcels,
                  min_area: float = 1e-6) -> List[Tuple[int, int, float]]:
    """Pairs of parcels whose interiors overlap.

    Args:
        parcels: The parcels.
        min_area: Overlaps of at most this area (squared CRS units) are
            ignored (shared borders, rounding).

    Returns:
        ``(parcel_id_a, parcel_id_b, overlap area)`` with 1-based ids,
        ``a < b``.
    """
    geoms = parcels.geometries
    left, right = parcels.tree.query(geoms, predicate='intersects')
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return []
    area = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    big = area > min_area
    return [(int(a) + 1, int(b) + 1, float(s))
            for a, b, s in zip(left[big], right[big], area[big])]


def rasterize_parcel_ids(parcels: Parcels, transform: Affine,
                         shape: Tuple[int, int]) -> np.ndarray:
    """Parcel id (1-based, 0 = none) of every pixel of a window.

    Pixel-centre rule; where parcels overlap the later one in file order
    wins.

    Args:
        parcels: The parcels (raster CRS).
        transform: Affine transform of the window.
        shape: ``(height, width)`` of the window.

    Returns:
        uint32 array of ``shape``.
    """
    height, width = shape
    box = shapely.box(*_bounds(transform, width, height))
    hits = np.sort(parcels.tree.query(box, predicate='intersects'))
    if not len(hits):
        return np.zeros(shape, dtype=PARCEL_ID_DTYPE)
    return rasterize(
        ((parcels.geometries[i], int(i) + 1) for i in hits),
        out_shape=shape, transform=transform, fill=0, all_touched=False,
        dtype=PARCEL_ID_DTYPE)


def _bounds(transform: Affine, width: int,
            height: int) -> Tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of a window."""
    xs, ys = zip(transform @ (0, 0), transform @ (width, height))
    return min(xs), min(ys), max(xs), max(ys)


def write_rows(path: str, rows: Sequence[dict],
               columns: Sequence[str]) -> None:
    """Write dict rows as CSV with a header (an empty table keeps it)."""
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in columns})


#: Rows of a prior raster rasterised at once (memory: rows x width x 4 B).
PRIOR_BLOCK_ROWS = 512


def write_prior_raster(parcels_path: str, grid, taxonomy: Taxonomy,
                       out_path: str, code_column: Optional[str] = None,
                       code_map: Optional[str] = None,
                       overwrite: bool = False) -> Dict[str, object]:
    """Last year's parcels as the 4-band prior raster of a map grid.

    The raster ``tools/infer.py --prior`` reads: per pixel the taxonomy ids
    of levels 1..4 of the parcel whose code it lies in (pixel-centre rule,
    as the tiles' prior), 0 (background) outside parcels and for codes
    that map to nothing. Rasterised in blocks of rows, so memory follows
    the grid's width.

    Args:
        parcels_path: Parcels of the previous year.
        grid: The S2 10 m grid of the map (:class:`~h2crop.geo.RasterGrid`).
        taxonomy: The model's taxonomy.
        out_path: GeoTIFF to write (uint8, 4 bands ``level1..level4``).
        code_column: Code attribute (see :func:`resolve_code_column`).
        code_map: ``--code-map`` (see :func:`load_code_map`).
        overwrite: Replace an existing ``out_path``.

    Returns:
        ``parcels``, ``unmapped`` (parcels whose code maps to nothing) and
        ``column`` (the code column read).

    Raises:
        FileExistsError: If ``out_path`` exists and not ``overwrite``.
        ParcelDataError: For an unreadable file or a missing column.
    """
    import rasterio
    from rasterio.windows import Window

    from h2crop.constants import LEVELS, PRIOR_DTYPE
    from h2crop.geo.cog import check_output

    check_output(out_path, overwrite)
    codes = load_code_map(code_map)
    column = resolve_code_column(parcels_path, code_column, codes)
    parcels = map_codes(read_parcels(parcels_path, column, grid.crs),
                        taxonomy, codes.mapping)
    profile = dict(driver='GTiff', width=grid.width, height=grid.height,
                   count=NUM_LEVELS, dtype=PRIOR_DTYPE, crs=grid.crs,
                   transform=grid.transform, compress='deflate', tiled=True)
    with rasterio.open(out_path, 'w', **profile) as dst:
        for row in range(0, grid.height, PRIOR_BLOCK_ROWS):
            rows = min(PRIOR_BLOCK_ROWS, grid.height - row)
            transform = grid.transform * Affine.translation(0, row)
            pid = rasterize_parcel_ids(parcels, transform, (rows, grid.width))
            # (rows, W) parcel ids -> (rows, W, 4) paths -> (4, rows, W)
            block = np.moveaxis(parcels.paths[pid], -1, 0)
            dst.write(block.astype(PRIOR_DTYPE),
                      window=Window(0, row, grid.width, rows))
        dst.descriptions = tuple(LEVELS)
        dst.update_tags(taxonomy_digest=taxonomy.digest(),
                        source=osp.abspath(parcels_path), code_column=column)
    return dict(parcels=len(parcels),
                unmapped=int(sum(1 for r in parcels.reasons if r)),
                column=column)
