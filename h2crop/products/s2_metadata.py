"""Facts of Sentinel-2 L2A products and the checks every input kind shares.

Band names, the Scene Classification (SCL) classes, the processing-level
check and the radiometric offset live here once, so that SAFE folders,
band-COG folders and STAC items are judged by the same rules
(docs/products.md#sentinel-2-l2a).

**Radiometry.** Level-2A digital numbers (DN) are bottom-of-atmosphere
reflectance times ``BOA_QUANTIFICATION_VALUE`` (10000). From processing
baseline 04.00 (products from 2022-01-25 on) the DN are shifted by a
per-band ``BOA_ADD_OFFSET`` (-1000 so far) given in ``MTD_MSIL2A.xml``:
reflectance = (DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE, DN 0 being
no data. The dataset's cubes hold reflectance x
:data:`~h2crop.constants.S2_REFLECTANCE_SCALE` with the offset removed,
i.e. ``(DN + offset) * gain`` with ``gain = 10000 / quantification``.
"""
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

from h2crop.constants import S2_BAND_NAMES, S2_REFLECTANCE_SCALE

from .errors import ProductError


def product_band(name: str) -> str:
    """The products' spelling of a band: ``'B2'`` -> ``'B02'``.

    Sentinel-2 files and most catalogues zero-pad single-digit bands
    (``B02``, ``B8A``, ``B11``); the dataset's band names and the
    ``Spectral_Information`` elements of the metadata do not (``B2``).

    Raises:
        ValueError: For a name that is not a Sentinel-2 band.
    """
    match = re.fullmatch(r'[Bb]0?(\d{1,2})([Aa]?)', name.strip())
    if not match:
        raise ValueError(f'{name!r} is not a Sentinel-2 band name')
    number, suffix = int(match.group(1)), match.group(2).upper()
    return f'B{number}{suffix}' if suffix else f'B{number:02d}'


#: The dataset's bands in the products' spelling, in the dataset's order.
PRODUCT_BANDS: Tuple[str, ...] = tuple(product_band(b) for b in S2_BAND_NAMES)
#: Asset / file key of the Scene Classification layer.
SCL = 'SCL'
#: Everything a composite reads from one product.
PRODUCT_ASSETS: Tuple[str, ...] = PRODUCT_BANDS + (SCL, )
#: Native pixel size (m) of the assets read (SCL is produced at 20 m).
NATIVE_RESOLUTION: Dict[str, int] = {
    'B02': 10, 'B03': 10, 'B04': 10, 'B05': 20, 'B06': 20, 'B07': 20,
    'B08': 10, 'B8A': 20, 'B11': 20, 'B12': 20, SCL: 20}
#: ``bandId`` -> band of ``MTD_MSIL2A.xml`` (``Spectral_Information``), used
#: when a product lists ``BOA_ADD_OFFSET band_id=...`` without that list.
MTD_BAND_IDS: Tuple[str, ...] = ('B01', 'B02', 'B03', 'B04', 'B05', 'B06',
                                 'B07', 'B08', 'B8A', 'B09', 'B10', 'B11',
                                 'B12')
#: Digital number of missing data in L2A reflectance bands and in SCL.
PRODUCT_NODATA = 0

#: Scene Classification classes of Sen2Cor.
SCL_CLASSES: Dict[int, str] = {
    0: 'no data',
    1: 'saturated or defective',
    2: 'topographic cast shadow (dark features / shadows before '
       '2022-01-25)',
    3: 'cloud shadow',
    4: 'vegetation',
    5: 'not vegetated',
    6: 'water',
    7: 'unclassified',
    8: 'cloud, medium probability',
    9: 'cloud, high probability',
    10: 'thin cirrus',
    11: 'snow or ice',
}
#: SCL classes masked by default (docs/products.md#cloud-shadow-and-snow-
#: masking): no data, defective, cast and cloud shadows, clouds, cirrus,
#: snow. Vegetation, bare soil, water and unclassified stay clear.
DEFAULT_MASK_CLASSES: Tuple[int, ...] = (0, 1, 2, 3, 8, 9, 10, 11)

#: First processing baseline whose products carry the BOA offset.
OFFSET_BASELINE: Tuple[int, int] = (4, 0)
#: ``BOA_QUANTIFICATION_VALUE`` of every baseline so far.
QUANTIFICATION = 10000.0


def pick_finest(candidates: Iterable[Tuple[str, Any, str]]
                ) -> Dict[str, str]:
    """The preferred source per band among candidates.

    Args:
        candidates: ``(band, preference, source)``; a lower preference wins
            (e.g. ``(resolution, is_jp2)``), the first of equal ones.

    Returns:
        Band -> source.
    """
    best: Dict[str, Tuple[Any, str]] = {}
    for band, pref, source in candidates:
        if band not in best or pref < best[band][0]:
            best[band] = (pref, source)
    return {band: source for band, (_, source) in best.items()}


def check_mask_classes(classes: Iterable[int]) -> Tuple[int, ...]:
    """Validate SCL classes to mask.

    Returns:
        The classes, sorted.

    Raises:
        ValueError: For classes outside 0..11 or repeated ones.
    """
    out = tuple(int(c) for c in classes)
    bad = [c for c in out if c not in SCL_CLASSES]
    if bad:
        raise ValueError(f'--mask-classes {list(out)}: {bad} are not SCL '
                         f'classes (0..{max(SCL_CLASSES)})')
    if len(set(out)) != len(out):
        raise ValueError(f'--mask-classes {list(out)}: a class is repeated')
    return tuple(sorted(out))


def parse_baseline(value) -> Optional[Tuple[int, int]]:
    """A processing baseline as ``(major, minor)``, None if not one.

    Accepts ``'05.09'``, ``'5.09'``, ``'N0509'`` and ``'N05.09'``.
    """
    if value is None:
        return None
    text = str(value).strip().upper().lstrip('N')
    match = re.fullmatch(r'(\d{1,2})\.(\d{2})', text) or \
        re.fullmatch(r'(\d{2})(\d{2})', text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def baseline_text(baseline: Optional[Tuple[int, int]]) -> Optional[str]:
    """``(5, 9)`` -> ``'05.09'``."""
    return None if baseline is None else f'{baseline[0]:02d}.{baseline[1]:02d}'


#: Product types, levels and name parts that mark a product as not L2A.
_NOT_L2A = re.compile(r'MSIL1C|MSIL1B|S2MSI1C|S2MSI1B|(^|[^A-Z0-9])L1[BC]'
                      r'($|[^A-Z0-9])', re.IGNORECASE)


def check_level(product: str, *values: Optional[str]) -> None:
    """Refuse a product that is not Level-2A.

    Args:
        product: The product's name, for the message.
        *values: What the product says about its level: its name, product
            type (``S2MSI2A``, ``S2MSI1C``), ``processing:level``, collection
            id, metadata file name; None entries are skipped.

    Raises:
        ProductError: When any value marks Level-1C or Level-1B.
    """
    for value in values:
        if value is not None and _NOT_L2A.search(str(value)):
            raise ProductError(
                f'{product}: Level-1 product ({value}); monthly composites '
                'need Level-2A (surface reflectance with the SCL layer): '
                'use the L2A product of the same acquisition')


@dataclass
class Radiometry:
    """How a product's digital numbers become the dataset's scaling.

    ``value = (DN + offsets[band]) * gains[band]`` is reflectance x
    :data:`~h2crop.constants.S2_REFLECTANCE_SCALE`.

    Args:
        offsets: DN added per band (``BOA_ADD_OFFSET``, e.g. -1000).
        gains: Factor per band (10000 / quantification value; 1 for L2A).
        source: Where the offsets came from, for the report.
        baseline: Processing baseline (``'05.09'``) if known.
    """

    offsets: Dict[str, float]
    gains: Dict[str, float]
    source: str
    baseline: Optional[str] = None
    notes: list = field(default_factory=list)


def resolve_radiometry(product: str,
                       baseline: Optional[Tuple[int, int]] = None,
                       offset_applied: Optional[bool] = None,
                       stated_offsets: Optional[Mapping[str, float]] = None,
                       quantification: Optional[Mapping[str, float]] = None,
                       assume_offset: Optional[float] = None,
                       stated_by: str = 'metadata',
                       warn: Optional[Callable[[str], None]] = None
                       ) -> Radiometry:
    """Decide a product's BOA offset from what it states.

    Rules, in order:

    1. ``offset_applied`` True (Earth Search's
       ``earthsearch:boa_offset_applied``): the provider already removed it,
       offset 0.
    2. A baseline before 04.00: no offset (ESA introduced it with 04.00); a
       non-zero stated offset is ignored with a warning.
    3. Offsets stated by the product (``BOA_ADD_OFFSET`` elements, STAC
       ``raster:bands`` offset / scale, GeoTIFF offset tags): used.
    4. Nothing stated: ``assume_offset`` if given, else refused.

    Args:
        product: Product name for messages.
        baseline: ``(major, minor)`` processing baseline, None if unknown.
        offset_applied: Whether the provider says the offset is already
            removed, None if it says nothing.
        stated_offsets: DN offset per band of :data:`PRODUCT_BANDS`, None
            when the product states none.
        quantification: Quantification value per band (default 10000).
        assume_offset: DN offset to use for products that state nothing
            (``--assume-offset``).
        stated_by: What stated the offsets (for the report).
        warn: Called with a message for ignored metadata.

    Returns:
        The offsets and gains of every band of :data:`PRODUCT_BANDS`.

    Raises:
        ProductError: When the offset cannot be told, naming the product and
            ``--assume-offset``.
    """
    quant = {b: float((quantification or {}).get(b, QUANTIFICATION))
             for b in PRODUCT_BANDS}
    bad = [b for b, q in quant.items() if not q > 0]
    if bad:
        raise ProductError(f'{product}: quantification value of {bad} is '
                           'not positive')
    gains = {b: S2_REFLECTANCE_SCALE / q for b, q in quant.items()}
    text = baseline_text(baseline)
    zero = {b: 0.0 for b in PRODUCT_BANDS}
    if offset_applied:
        return Radiometry(zero, gains, 'provider removed it '
                          '(earthsearch:boa_offset_applied)', text)
    if baseline is not None and baseline < OFFSET_BASELINE:
        if stated_offsets and any(stated_offsets.values()) and warn:
            warn(f'{product}: processing baseline {text} predates the BOA '
                 f'offset (04.00); ignoring the offset its {stated_by} '
                 'states')
        return Radiometry(zero, gains, f'baseline {text} < 04.00: none',
                          text)
    if stated_offsets is not None:
        missing = [b for b in PRODUCT_BANDS if b not in stated_offsets]
        if missing:
            raise ProductError(f'{product}: its {stated_by} states BOA '
                               f'offsets but none for {missing}')
        return Radiometry({b: float(stated_offsets[b]) for b in PRODUCT_BANDS},
                          gains, stated_by, text)
    if assume_offset is not None:
        return Radiometry({b: float(assume_offset) for b in PRODUCT_BANDS},
                          gains, 'assumed (--assume-offset)', text)
    known = (f'processing baseline {text} (>= 04.00, so its DN carry an '
             'offset)' if baseline is not None else
             'no processing baseline')
    raise ProductError(
        f'{product}: states {known} but no BOA offset (no BOA_ADD_OFFSET, '
        'raster:bands offset or earthsearch:boa_offset_applied); check the '
        'product and pass --assume-offset -1000 (the value ESA uses from '
        'baseline 04.00) or --assume-offset 0 (offset already removed)')
