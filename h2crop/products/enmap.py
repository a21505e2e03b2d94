"""EnMAP L2A products: finding them, their metadata, bands and masks.

An EnMAP L2A product (as DLR delivers it, unzipped) is a folder named after
the product, ``ENMAP01-____L2A-DT<datatake>_<start>Z_<tile>_V<processor>_
<processing time>Z``, that holds ``<name>-<PART>.<ext>`` files
(``docs/products.md#the-l2a-product``):

* ``METADATA.XML``: per band ``specific/bandCharacterisation/bandID`` with
  ``wavelengthCenterOfBand``, ``FWHMOfBand``, ``GainOfBand``,
  ``OffsetOfBand`` (reflectance = DN x gain + offset, 0..1), the
  acquisition start ``base/temporalCoverage/startTime``;
* ``SPECTRAL_IMAGE.TIF``: 224 bands, int16, no-data -32768, ordered by
  wavelength (VNIR and SWIR interleaved in their 902-993 nm overlap);
* ``QL_QUALITY_CLOUD``, ``_CLOUDSHADOW``, ``_HAZE``, ``_SNOW``: 0 clear,
  1 flagged; ``QL_QUALITY_CIRRUS``: 0 none, 1 thin, 2 medium, 3 thick;
  ``QL_QUALITY_CLASSES``: 1 land, 2 water, 3 background (outside the
  swath); ``QL_PIXELMASK``: one band per spectral band, non-zero where a
  detector element is defective.

DLR's cloud-optimised copies spell the rasters ``<PART>_COG.TIF``; both are
read. :func:`find_enmap_products` finds products under folders or from
their METADATA.XML; :func:`select_bands` matches a product's wavelengths to
the 218 of the dataset (:mod:`h2crop.products.enmap_bands`);
:class:`ProductBlockReader` reads a window of a product as scaled, masked
reflectance. The cube itself is built by :mod:`h2crop.products.enmap_cube`.
"""
import contextlib
import os
import os.path as osp
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from h2crop.constants import ENMAP_BANDS, ENMAP_DTYPE, ENMAP_REFLECTANCE_SCALE
from h2crop.geo.grid import RasterGrid, fill_value, open_on_grid

from .enmap_bands import H2CROP_ENMAP_WAVELENGTHS
from .errors import ProductError

#: File part of the metadata and of the spectral image.
METADATA_PART = 'METADATA.XML'
SPECTRAL_PART = 'SPECTRAL_IMAGE'
#: Extensions of the rasters: GeoTIFF (the default order format) or ENVI.
RASTER_EXTENSIONS = ('.TIF', '.TIFF', '.GEOTIFF', '.BSQ', '.BIL', '.BIP')
#: No-data value of the L2A spectral image when its file does not say.
L2A_NODATA = -32768
#: No-data value of the cube (the int16 minimum).
CUBE_NODATA = int(fill_value(ENMAP_DTYPE))
#: Wavelength tolerance (nm) when matching a product's bands to the cube's.
DEFAULT_TOLERANCE_NM = 2.5

#: ``--mask`` name -> (quality layer, values that mask a pixel). ``None``:
#: any non-zero value.
MASKS: Dict[str, Tuple[str, Optional[Tuple[int, ...]]]] = {
    'cloud': ('QL_QUALITY_CLOUD', None),
    'cirrus': ('QL_QUALITY_CIRRUS', None),
    'haze': ('QL_QUALITY_HAZE', None),
    'snow': ('QL_QUALITY_SNOW', None),
    'cloudshadow': ('QL_QUALITY_CLOUDSHADOW', None),
    # 0: no class, 3: background outside the swath
    'background': ('QL_QUALITY_CLASSES', (0, 3)),
    'water': ('QL_QUALITY_CLASSES', (2, )),
    'pixelmask': ('QL_PIXELMASK', None),
}
#: Masks applied unless told otherwise (``pixelmask`` and ``water`` are
#: opt-in, see ``docs/products.md#masks``).
DEFAULT_MASKS: Tuple[str, ...] = ('cloud', 'cirrus', 'haze', 'snow',
                                  'cloudshadow', 'background')
#: Masks that only tell where the product has no data (not a quality flag).
DATA_MASKS = ('background', )

_NAME = re.compile(r'^(?P<name>ENMAP01-_*(?P<level>L\d[A-Z])-DT\w+?)-'
                   r'METADATA\.XML$', re.IGNORECASE)
_START = re.compile(r'-DT\d+_(\d{8}T\d{6})Z_')


class EnmapProductError(ProductError):
    """An EnMAP product that cannot be used; the message names the file."""


@dataclass
class EnmapProduct:
    """One EnMAP L2A product on disk and its metadata.

    Attributes:
        name: Product name (the file stem before ``-METADATA.XML``).
        folder: Folder holding the product's files.
        metadata_path: Its METADATA.XML.
        spectral_path: Its spectral image.
        level: Processing level from the metadata (``'L2A'``).
        start_time: Acquisition start (UTC).
        wavelengths: Centre wavelength per band (nm), shape (N,).
        fwhm: Full width at half maximum per band (nm), shape (N,).
        gains: ``GainOfBand``, shape (N,).
        offsets: ``OffsetOfBand``, shape (N,).
        grid: Grid of the spectral image.
        nodata: No-data value of the spectral image.
        layers: Quality layer name (``'QL_QUALITY_CLOUD'``, ...) -> file,
            for the layers present.
    """

    name: str
    folder: str
    metadata_path: str
    spectral_path: str
    level: str
    start_time: datetime
    wavelengths: np.ndarray
    fwhm: np.ndarray
    gains: np.ndarray
    offsets: np.ndarray
    grid: RasterGrid
    nodata: float
    layers: Dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Number of spectral bands."""
        return len(self.wavelengths)

    def layer_path(self, layer: str, mask: str) -> str:
        """The file of quality ``layer``, needed by ``--mask`` ``mask``.

        Raises:
            EnmapProductError: When the product has no such file.
        """
        if layer not in self.layers:
            raise EnmapProductError(
                f'{self.folder}: no {self.name}-{layer}.TIF (needed by '
                f'--mask {mask}); restore it from the product archive or '
                'leave that mask out')
        return self.layers[layer]


@dataclass(frozen=True)
class BandSelection:
    """Which bands of a product make the cube's bands.

    Attributes:
        indices: 0-based band index in the product per cube band, (K,).
        wavelengths: The product's wavelengths of those bands, (K,).
        reference: The cube's reference wavelengths, (K,).
        dropped: 0-based product bands that the cube does not use.
    """

    indices: np.ndarray
    wavelengths: np.ndarray
    reference: np.ndarray
    dropped: np.ndarray

    @property
    def worst_offset(self) -> float:
        """Largest |product - reference| wavelength (nm)."""
        return float(np.abs(self.wavelengths - self.reference).max())


# ---------------------------------------------------------------- metadata
def _text(root: ET.Element, paths: Sequence[str]) -> Optional[str]:
    """Text of the first of ``paths`` that exists and is not empty."""
    for path in paths:
        node = root.find(path)
        if node is not None and node.text and node.text.strip():
            return node.text.strip()
    return None


def parse_time(text: str) -> datetime:
    """An ISO time of the metadata (``2022-06-11T10:42:45.123456Z``), UTC.

    Raises:
        ValueError: When the text is not an ISO time.
    """
    value = text.strip().replace('Z', '+00:00')
    # more than 6 fractional digits are cut (fromisoformat takes 6)
    value = re.sub(r'(\.\d{6})\d+', r'\1', value)
    time = datetime.fromisoformat(value)
    if time.tzinfo is None:
        time = time.replace(tzinfo=timezone.utc)
    return time.astimezone(timezone.utc)


def read_band_table(root: ET.Element, path: str) -> np.ndarray:
    """Wavelength, FWHM, gain and offset of every band, by band number.

    Args:
        root: Root element of a METADATA.XML.
        path: The file, for messages.

    Returns:
        float64 (N, 4): columns wavelength (nm), FWHM (nm), gain, offset.

    Raises:
        EnmapProductError: For a missing table, element or number, or band
            numbers that are not 1..N.
    """
    bands = root.findall('specific/bandCharacterisation/bandID') or \
        root.findall('.//bandCharacterisation/bandID')
    if not bands:
        raise EnmapProductError(f'{path}: no specific/bandCharacterisation/'
                                'bandID elements (wavelengths and scaling)')
    keys = ('wavelengthCenterOfBand', 'FWHMOfBand', 'GainOfBand',
            'OffsetOfBand')
    rows = {}
    for band in bands:
        number = band.get('number')
        try:
            values = [float(band.findtext(k)) for k in keys]
            rows[int(number)] = values
        except (TypeError, ValueError):
            missing = [k for k in keys if not (band.findtext(k) or '')
                       .strip()]
            raise EnmapProductError(
                f'{path}: bandCharacterisation/bandID number={number!r}: '
                f'missing or non-numeric {missing or keys}') from None
    numbers = sorted(rows)
    if numbers != list(range(1, len(numbers) + 1)):
        raise EnmapProductError(f'{path}: bandID numbers are {numbers[0]}..'
                                f'{numbers[-1]} with gaps or repeats; '
                                'expected 1..N')
    return np.array([rows[n] for n in numbers], dtype=np.float64)


def _find_part(folder: str, name: str, part: str) -> Optional[str]:
    """The file ``<name>-<part>[_COG].<ext>`` in ``folder`` (any case)."""
    wanted = {f'{name}-{part}{cog}{ext}'.upper()
              for cog in ('', '_COG') for ext in RASTER_EXTENSIONS}
    for entry in sorted(os.listdir(folder)):
        if entry.upper() in wanted:
            return osp.join(folder, entry)
    return None


def read_enmap_product(metadata_path: str) -> EnmapProduct:
    """Read an L2A product from its METADATA.XML.

    Args:
        metadata_path: ``<name>-METADATA.XML``; the other files are looked
            up beside it.

    Returns:
        The product with its metadata, the grid of its spectral image and
        the quality layers present.

    Raises:
        EnmapProductError: For a file that is not an L2A METADATA.XML, a
            corrupt XML, a missing or unreadable spectral image, or a
            spectral image whose band count differs from the metadata.
    """
    folder = osp.dirname(osp.abspath(metadata_path))
    match = _NAME.match(osp.basename(metadata_path))
    if match is None:
        raise EnmapProductError(
            f'{metadata_path}: not an EnMAP product metadata file (expected '
            'ENMAP01-____L2A-DT...-METADATA.XML)')
    name = match.group('name')
    try:
        root = ET.parse(metadata_path).getroot()
    except (ET.ParseError, OSError) as err:
        raise EnmapProductError(f'{metadata_path}: cannot read as XML: '
                                f'{err}') from err
    level = (_text(root, ('metadata/schema/processingLevel', 'base/level',
                          'specific/code')) or match.group('level')).upper()
    if level != 'L2A':
        raise EnmapProductError(
            f'{metadata_path}: processing level {level}; the cube needs '
            'L2A (surface reflectance), order the product as L2A')
    table = read_band_table(root, metadata_path)
    start = _text(root, ('base/temporalCoverage/startTime', ))
    try:
        if start is not None:
            start_time = parse_time(start)
        else:
            stamp = _START.search(name)
            if stamp is None:
                raise ValueError('no start time')
            start_time = datetime.strptime(
                stamp.group(1), '%Y%m%dT%H%M%S').replace(tzinfo=timezone.utc)
    except ValueError:
        raise EnmapProductError(
            f'{metadata_path}: base/temporalCoverage/startTime '
            f'{start!r} is not an ISO time and the name has none') from None
    spectral = _find_part(folder, name, SPECTRAL_PART)
    if spectral is None:
        raise EnmapProductError(
            f'{folder}: spectral image {name}-{SPECTRAL_PART}.TIF not found '
            'beside the METADATA.XML')
    try:
        with rasterio.open(spectral) as ds:
            grid = RasterGrid.from_dataset(ds)
            count, nodata = ds.count, ds.nodata
    except RasterioError as err:
        raise EnmapProductError(f'{spectral}: cannot read the spectral '
                                f'image (truncated or corrupt?): {err}'
                                ) from err
    if count != len(table):
        raise EnmapProductError(
            f'{spectral}: {count} bands, but {metadata_path} describes '
            f'{len(table)} (specific/bandCharacterisation)')
    if grid.crs is None:
        raise EnmapProductError(f'{spectral}: the spectral image has no '
                                'CRS')
    layers = {}
    for layer in sorted({layer for layer, _ in MASKS.values()}):
        found = _find_part(folder, name, layer)
        if found is not None:
            layers[layer] = found
    return EnmapProduct(
        name=name, folder=folder, metadata_path=metadata_path,
        spectral_path=spectral, level=level, start_time=start_time,
        wavelengths=table[:, 0], fwhm=table[:, 1], gains=table[:, 2],
        offsets=table[:, 3], grid=grid,
        nodata=float(L2A_NODATA if nodata is None else nodata),
        layers=layers)


def _metadata_files(folder: str) -> List[str]:
    """Every ``*-METADATA.XML`` below ``folder`` (any case), sorted."""
    found = []
    for here, dirs, files in os.walk(folder):
        dirs.sort()
        found += [osp.join(here, f) for f in sorted(files)
                  if f.upper().endswith('-' + METADATA_PART)]
    return found


def _spectral_folders(folder: str) -> List[str]:
    """Folders below ``folder`` holding an ``*-SPECTRAL_IMAGE*`` raster."""
    hits = set()
    for here, _, files in os.walk(folder):
        if any(f'-{SPECTRAL_PART}' in f.upper() for f in files):
            hits.add(here)
    return sorted(hits)


def find_enmap_products(paths: Sequence[str]) -> List[EnmapProduct]:
    """Find and read the L2A products given as folders or METADATA.XML.

    A folder is searched recursively, so a folder of unzipped products
    works as well as one product's folder.

    Args:
        paths: Product folders, folders of product folders, or
            ``*-METADATA.XML`` files.

    Returns:
        The products, latest acquisition first.

    Raises:
        EnmapProductError: For a path that does not exist, a ZIP archive, a
            folder without products, a spectral image without its
            METADATA.XML, a product given twice, and every error of
            :func:`read_enmap_product`.
    """
    metadata: List[str] = []
    for path in paths:
        if not osp.exists(path):
            raise EnmapProductError(f'{path}: no such file or folder')
        if osp.isfile(path):
            if path.upper().endswith('.ZIP'):
                raise EnmapProductError(
                    f'{path}: a ZIP archive; unzip it (and the product ZIP '
                    'inside) and give the product folder')
            metadata.append(path)
            continue
        found = _metadata_files(path)
        have = {osp.dirname(osp.abspath(f)) for f in found}
        orphans = [f for f in _spectral_folders(path)
                   if osp.abspath(f) not in have]
        if orphans:
            raise EnmapProductError(
                f'{orphans[0]}: an EnMAP spectral image without its '
                f'-{METADATA_PART} (wavelengths and scaling); restore it '
                'from the product archive')
        if not found:
            raise EnmapProductError(f'{path}: no EnMAP product (no '
                                    f'*-{METADATA_PART}) in this folder')
        metadata += found
    products = [read_enmap_product(p) for p in metadata]
    seen: Dict[str, str] = {}
    for product in products:
        if product.name in seen:
            raise EnmapProductError(
                f'{product.metadata_path}: product {product.name} is also '
                f'given as {seen[product.name]}')
        seen[product.name] = product.metadata_path
    return latest_first(products)


def latest_first(products: Sequence[EnmapProduct]) -> List[EnmapProduct]:
    """Products by acquisition start, latest first (the mosaic order)."""
    return sorted(products, key=lambda p: (p.start_time, p.name),
                  reverse=True)


# ---------------------------------------------------------------- bands
def select_bands(wavelengths: Sequence[float],
                 reference: Optional[Sequence[float]] = None,
                 tolerance: float = DEFAULT_TOLERANCE_NM,
                 source: str = 'product') -> BandSelection:
    """Match a product's bands to the cube's reference wavelengths.

    The product's bands are sorted by wavelength and the K reference
    wavelengths are matched to K of them in the same order (each band used
    once, none more than ``tolerance`` away) with the smallest summed
    |difference| (dynamic programming over K x N). Order matters in the
    VNIR/SWIR overlap, where two bands may lie 0.2 nm apart.

    Args:
        wavelengths: The product's centre wavelengths (nm), (N,).
        reference: The cube's wavelengths, (K,); default the 218 of
            :data:`~h2crop.products.enmap_bands.H2CROP_ENMAP_WAVELENGTHS`.
        tolerance: Largest accepted |difference| (nm).
        source: Names the product in messages.

    Returns:
        The selection.

    Raises:
        EnmapProductError: When the product has fewer bands than the cube
            or no ordered match within ``tolerance`` exists (naming the
            first cube band that cannot be matched and the nearest product
            band).
    """
    ref = np.asarray(H2CROP_ENMAP_WAVELENGTHS if reference is None
                     else reference, dtype=np.float64)
    wav = np.asarray(wavelengths, dtype=np.float64)
    order = np.argsort(wav, kind='stable')
    sw = wav[order]
    n, k = len(sw), len(ref)
    if n < k:
        raise EnmapProductError(f'{source}: {n} bands; the cube needs {k} '
                                '(bands do not match)')
    # cost[i, j]: best sum for ref[:i+1] with ref[i] matched to band j;
    # pairs further apart than the tolerance are not allowed (inf)
    diff = np.abs(ref[:, None] - sw[None, :])  # (K, N)
    allowed = np.where(diff <= tolerance, diff, np.inf)
    cost = np.full((k, n), np.inf)
    cost[0] = allowed[0]
    back = np.zeros((k, n), dtype=np.int64)
    for i in range(1, k):
        # best predecessor among bands 0..j-1: running minimum, shifted
        prev = np.minimum.accumulate(cost[i - 1])
        arg = _running_argmin(cost[i - 1])
        cost[i, 1:] = allowed[i, 1:] + prev[:-1]
        back[i, 1:] = arg[:-1]
    dead = np.flatnonzero(~np.isfinite(cost).any(axis=1))
    if len(dead):
        i = int(dead[0])
        near = int(np.argmin(diff[i]))
        raise EnmapProductError(
            f'{source}: bands do not match the cube\'s: cube band {i + 1} '
            f'({ref[i]:.1f} nm) has no product band within {tolerance:g} nm '
            f'in wavelength order (nearest: product band {order[near] + 1}, '
            f'{sw[near]:.1f} nm, {diff[i, near]:.1f} nm off; '
            '--wavelength-tolerance, or --bands-like for another band set)')
    picks = np.empty(k, dtype=np.int64)
    picks[-1] = int(np.argmin(cost[-1]))
    for i in range(k - 1, 0, -1):
        picks[i - 1] = back[i, picks[i]]
    indices = order[picks]
    dropped = np.setdiff1d(np.arange(n), indices)
    return BandSelection(indices=indices, wavelengths=wav[indices],
                         reference=ref, dropped=dropped)


def _running_argmin(values: np.ndarray) -> np.ndarray:
    """Index of the minimum of ``values[:j+1]`` for every j."""
    best = np.minimum.accumulate(values)
    # first position where the running minimum takes its current value
    is_new = np.r_[True, best[1:] < best[:-1]]
    return np.maximum.accumulate(np.where(is_new, np.arange(len(values)),
                                          0))


def reference_from_metadata(path: str,
                            tolerance: float = DEFAULT_TOLERANCE_NM
                            ) -> Tuple[float, ...]:
    """Reference wavelengths taken from another product (``--bands-like``).

    A METADATA.XML with exactly :data:`~h2crop.constants.ENMAP_BANDS`
    bands gives them all; one with more gives the bands that
    :func:`select_bands` picks from it, so products of another processor
    version are matched to that version's own wavelengths.

    Raises:
        EnmapProductError: For an unreadable file or bands that do not
            match.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise EnmapProductError(f'{path}: cannot read as XML (--bands-like): '
                                f'{err}') from err
    wav = read_band_table(root, path)[:, 0]
    if len(wav) == ENMAP_BANDS:
        return tuple(float(w) for w in np.sort(wav))
    sel = select_bands(wav, tolerance=tolerance, source=f'{path} '
                       '(--bands-like)')
    return tuple(float(w) for w in sel.wavelengths)


# ---------------------------------------------------------------- masks
def check_masks(masks: Sequence[str]) -> Tuple[str, ...]:
    """Validate ``--mask`` names.

    Raises:
        ValueError: For an unknown name, listing the known ones.
    """
    out = []
    for name in masks:
        name = name.strip().lower()
        if not name:
            continue
        if name not in MASKS:
            raise ValueError(f'--mask {name!r}: unknown; choose from '
                             f'{",".join(MASKS)}')
        if name not in out:
            out.append(name)
    return tuple(out)


class ProductBlockReader:
    """Reads windows of one product as masked, scaled reflectance.

    Use as a context manager: the spectral image and the quality layers
    the masks need stay open. Quality layers that do not lie on the
    spectral image's grid are read through :func:`open_on_grid` (nearest).

    Args:
        product: The product.
        selection: Its band selection.
        masks: ``--mask`` names (:data:`MASKS`).
    """

    def __init__(self, product: EnmapProduct, selection: BandSelection,
                 masks: Sequence[str]) -> None:
        self.product = product
        self.selection = selection
        self.masks = check_masks(masks)
        self.bands = [int(i) + 1 for i in selection.indices]
        scale = np.float32(ENMAP_REFLECTANCE_SCALE)
        # DN -> reflectance x 10^4, per selected band: (K, 1, 1)
        self.gain = (product.gains[selection.indices] * scale
                     ).astype(np.float32)[:, None, None]
        self.offset = (product.offsets[selection.indices] * scale
                       ).astype(np.float32)[:, None, None]
        self._stack = None
        self._layers: Dict[str, object] = {}

    def __enter__(self) -> 'ProductBlockReader':
        product = self.product
        # everything opened so far is closed again if a later file fails
        with contextlib.ExitStack() as stack:
            self._spectral = stack.enter_context(
                rasterio.open(product.spectral_path))
            for mask in self.masks:
                layer = MASKS[mask][0]
                if layer not in self._layers:
                    self._layers[layer] = self._open_layer(stack, layer,
                                                           mask)
            self._stack = stack.pop_all()
        return self

    def _open_layer(self, stack: contextlib.ExitStack, layer: str,
                    mask: str):
        """Open quality ``layer`` (needed by ``mask``) on the product grid.

        Raises:
            EnmapProductError: For a missing or unreadable file, or a
                QL_PIXELMASK whose band count fits neither 1 nor N.
        """
        product = self.product
        path = product.layer_path(layer, mask)
        try:
            ds = stack.enter_context(open_on_grid(
                path, product.grid, Resampling.nearest,
                name=f'{product.name} {layer}'))
        except RasterioError as err:
            raise EnmapProductError(
                f'{path}: cannot read the quality layer (needed by --mask '
                f'{mask}; truncated or corrupt?): {err}') from err
        if layer == 'QL_PIXELMASK' and ds.count not in (1, product.count):
            raise EnmapProductError(
                f'{path}: {ds.count} bands; expected 1 or one per spectral '
                f'band ({product.count})')
        return ds

    def __exit__(self, *exc) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
            self._layers = {}

    def _read(self, ds, window: Window, path: str,
              indexes=None) -> np.ndarray:
        try:
            return ds.read(indexes, window=window)
        except RasterioError as err:
            raise EnmapProductError(f'{path}: cannot read rows '
                                    f'{window.row_off}..'
                                    f'{window.row_off + window.height - 1} '
                                    f'(truncated or corrupt?): {err}'
                                    ) from err

    def read(self, window: Window) -> Dict[str, np.ndarray]:
        """Scaled reflectance and masks of a window of the product's grid.

        Args:
            window: Window of the spectral image (inside it).

        Returns:
            dict with ``'value'`` float32 (K, h, w): reflectance x 10^4,
            NaN where the pixel is not clear; ``'data'`` bool (h, w): the
            product has data (not no-data in every band, not background);
            ``'band_nodata'`` int64 (K,): per band, pixels with data where
            that band alone is no-data.
        """
        product = self.product
        dn = self._read(self._spectral, window, product.spectral_path,
                        self.bands)  # (K, h, w)
        nod = dn == product.nodata
        data = ~nod.all(0)
        clear = data & ~nod.any(0)
        for mask in self.masks:
            layer, values = MASKS[mask]
            ds = self._layers[layer]
            if layer == 'QL_PIXELMASK':
                idx = self.bands if ds.count > 1 else [1]
                flag = (self._read(ds, window, ds.name, idx) != 0).any(0)
            else:
                arr = self._read(ds, window, ds.name, 1)
                flag = arr != 0 if values is None else np.isin(arr, values)
            if mask in DATA_MASKS:
                data &= ~flag
            clear &= ~flag
        band_nodata = (nod & data[None]).sum(axis=(1, 2))
        value = dn.astype(np.float32)
        value *= self.gain
        value += self.offset
        value[:, ~clear] = np.nan
        return dict(value=value, data=data, band_nodata=band_nodata)
