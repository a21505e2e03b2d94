"""Sentinel-2 SAFE products (folders or zip archives) as pystac Items.

A Level-2A SAFE product is named
``S2B_MSIL2A_20230615T103629_N0509_R008_T32TQM_20230615T134516.SAFE``
(mission, level, sensing start, processing baseline ``Nxxyy``, relative
orbit, MGRS tile, product discriminator) and holds::

    MTD_MSIL2A.xml
    GRANULE/L2A_T32TQM_A<orbit>_<time>/IMG_DATA/R10m/T32TQM_<sensing>_B02_10m.jp2
                                              /R20m/T32TQM_<sensing>_B05_20m.jp2
                                              /R20m/T32TQM_<sensing>_SCL_20m.jp2

The 10 m folder has B02, B03, B04 and B08; the other bands of the dataset
and SCL are read from the 20 m folder (each band at its finest
resolution). ``MTD_MSIL2A.xml`` gives ``PRODUCT_TYPE``,
``PROCESSING_BASELINE``, ``PRODUCT_START_TIME``, the image files
(``Granule/IMAGE_FILE``), ``BOA_QUANTIFICATION_VALUE`` and, from baseline
04.00, ``BOA_ADD_OFFSET band_id="i"`` (``bandId`` i names a band in
``Spectral_Information``). Zipped products are read in place through
GDAL's ``/vsizip/``.
"""
import datetime as dt
import os
import os.path as osp
import re
import zipfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple
from xml.etree import ElementTree

from .errors import ProductError
from .s2_metadata import (
    MTD_BAND_IDS,
    PRODUCT_ASSETS,
    PRODUCT_BANDS,
    check_level,
    parse_baseline,
    pick_finest,
    product_band,
)

#: A SAFE product name (without ``.SAFE`` / ``.zip``).
SAFE_NAME = re.compile(
    r'(?P<mission>S2[A-D])_MSI(?P<level>L1B|L1C|L2A)_'
    r'(?P<sensing>\d{8}T\d{6})_N(?P<baseline>\d{4})_R(?P<orbit>\d{3})_'
    r'T(?P<tile>[0-9A-Z]{5})_(?P<discriminator>\d{8}T\d{6})')
#: Product metadata file names per level.
MTD_L2A = 'MTD_MSIL2A.xml'
MTD_NOT_L2A = ('MTD_MSIL1C.xml', 'MTD_MSIL1B.xml')
#: Image file of a band in a granule: ``<tile>_<time>_<band>_<res>m.jp2``.
_IMAGE = re.compile(r'_(?P<band>B\d{2}|B8A|SCL)_(?P<res>\d{2})m\.jp2$',
                    re.IGNORECASE)


def product_name(path: str) -> str:
    """A product's name: its file name without ``.SAFE`` / ``.zip``."""
    name = osp.basename(osp.normpath(path))
    for suffix in ('.zip', '.SAFE', '.safe'):
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    return name


def parse_name(name: str) -> Optional[Dict[str, str]]:
    """The parts of a SAFE name, None if ``name`` is not one."""
    match = SAFE_NAME.search(name)
    return match.groupdict() if match else None


def name_datetime(sensing: str) -> dt.datetime:
    """``20230615T103629`` as a UTC datetime."""
    return dt.datetime.strptime(sensing, '%Y%m%dT%H%M%S').replace(
        tzinfo=dt.timezone.utc)


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time (``2023-06-15T10:36:29.024Z``) as UTC datetime."""
    value = dt.datetime.fromisoformat(text.strip().replace('Z', '+00:00'))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _local(tag: str) -> str:
    return tag.rsplit('}', 1)[-1]


@dataclass
class SafeMetadata:
    """What ``MTD_MSIL2A.xml`` states.

    Args:
        level_tag: Root element (``Level-2A_User_Product``).
        product_type: ``PRODUCT_TYPE`` (``S2MSI2A``).
        baseline: ``PROCESSING_BASELINE`` as ``(major, minor)``.
        start_time: ``PRODUCT_START_TIME``.
        quantification: ``BOA_QUANTIFICATION_VALUE``.
        offsets: ``BOA_ADD_OFFSET`` per band (products' spelling), None
            when the file has no ``BOA_ADD_OFFSET_VALUES_LIST``.
        image_files: ``IMAGE_FILE`` entries (paths in the product, without
            extension).
    """

    level_tag: str
    product_type: Optional[str]
    baseline: Optional[Tuple[int, int]]
    start_time: Optional[dt.datetime]
    quantification: Optional[float]
    offsets: Optional[Dict[str, float]]
    image_files: List[str]


def parse_metadata(data: bytes, source: str) -> SafeMetadata:
    """Read the elements the composites need from a product's metadata.

    Args:
        data: The XML document.
        source: Its path, for messages.

    Raises:
        ProductError: For a document that is not XML or has bad values.
    """
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as err:
        raise ProductError(f'{source}: not readable XML ({err})') from err
    texts: Dict[str, str] = {}
    band_ids: Dict[int, str] = {}
    offsets: Dict[int, str] = {}
    has_offsets = False
    images: List[str] = []
    for el in root.iter():
        tag = _local(el.tag)
        if tag == 'Spectral_Information' and el.get('bandId') is not None:
            band_ids[int(el.get('bandId'))] = el.get('physicalBand', '')
        elif tag == 'BOA_ADD_OFFSET_VALUES_LIST':
            has_offsets = True
        elif tag == 'BOA_ADD_OFFSET':
            offsets[int(el.get('band_id', -1))] = (el.text or '').strip()
        elif tag == 'IMAGE_FILE':
            images.append((el.text or '').strip())
        elif el.text and tag not in texts:
            texts[tag] = el.text.strip()
    by_band = None
    if has_offsets:
        by_band = {}
        for band_id, value in offsets.items():
            name = band_ids.get(band_id) or (
                MTD_BAND_IDS[band_id] if 0 <= band_id < len(MTD_BAND_IDS)
                else None)
            if name is None:
                raise ProductError(f'{source}: BOA_ADD_OFFSET band_id='
                                   f'{band_id} names no band')
            try:
                by_band[product_band(name)] = float(value)
            except ValueError as err:
                raise ProductError(
                    f'{source}: BOA_ADD_OFFSET band_id={band_id} is '
                    f'{value!r}; expected a number') from err
    quant = texts.get('BOA_QUANTIFICATION_VALUE')
    start = texts.get('PRODUCT_START_TIME')
    try:
        quant_value = float(quant) if quant is not None else None
        start_time = parse_time(start) if start else None
    except ValueError as err:
        raise ProductError(f'{source}: bad BOA_QUANTIFICATION_VALUE or '
                           f'PRODUCT_START_TIME ({err})') from err
    return SafeMetadata(
        level_tag=_local(root.tag), product_type=texts.get('PRODUCT_TYPE'),
        baseline=parse_baseline(texts.get('PROCESSING_BASELINE')),
        start_time=start_time, quantification=quant_value, offsets=by_band,
        image_files=images)


@dataclass
class SafeProduct:
    """A SAFE product's metadata and band files.

    Args:
        name: Product name (no ``.SAFE``).
        path: The folder or zip archive.
        metadata: Its ``MTD_MSIL2A.xml``.
        metadata_path: Where that file is (a ``/vsizip/`` path in zips).
        files: Readable path (``/vsizip/...`` in zips) per asset of
            :data:`~h2crop.products.s2_metadata.PRODUCT_ASSETS`.
        datetime: Sensing start.
    """

    name: str
    path: str
    metadata: SafeMetadata
    metadata_path: str
    files: Dict[str, str]
    datetime: dt.datetime


def is_safe(path: str) -> bool:
    """Whether ``path`` looks like a SAFE product (folder or zip)."""
    if osp.isdir(path):
        return (path.rstrip('/').upper().endswith('.SAFE')
                or any(osp.isfile(osp.join(path, m))
                       for m in (MTD_L2A, ) + MTD_NOT_L2A))
    return path.lower().endswith('.zip') and zipfile.is_zipfile(path)


def _members(path: str) -> Tuple[List[str], Dict[str, bytes], str]:
    """Relative member paths, metadata bytes and the read prefix."""
    if osp.isdir(path):
        members = []
        for folder, _, names in os.walk(path):
            rel = osp.relpath(folder, path)
            members += [osp.normpath(osp.join(rel, n)) for n in names]
        meta = {}
        for name in (MTD_L2A, ) + MTD_NOT_L2A:
            if osp.isfile(osp.join(path, name)):
                with open(osp.join(path, name), 'rb') as f:
                    meta[name] = f.read()
        return members, meta, osp.abspath(path)
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith('/')]
            tops = {n.split('/', 1)[0] for n in names}
            root = tops.pop() if len(tops) == 1 and all(
                '/' in n for n in names) else ''
            strip = len(root) + 1 if root else 0
            members = [n[strip:] for n in names]
            meta = {}
            for name in (MTD_L2A, ) + MTD_NOT_L2A:
                full = f'{root}/{name}' if root else name
                if full in names:
                    meta[name] = zf.read(full)
    except (zipfile.BadZipFile, OSError) as err:
        raise ProductError(f'{path}: cannot be read as a zip archive '
                           f'({err})') from err
    prefix = f'/vsizip/{osp.abspath(path)}'
    return members, meta, f'{prefix}/{root}' if root else prefix


def read_safe(path: str) -> SafeProduct:
    """Open a SAFE product folder or zip archive.

    Raises:
        ProductError: For a Level-1 product, missing metadata, a missing
            band file or several granules, naming the product and what is
            missing.
    """
    name = product_name(path)
    parts = parse_name(name)
    members, meta, prefix = _members(path)
    for other in MTD_NOT_L2A:
        if other in meta:
            check_level(name, other)
    if parts is not None:
        check_level(name, f'MSI{parts["level"]}')
    if MTD_L2A not in meta:
        raise ProductError(f'{path}: no {MTD_L2A} at the top of the product '
                           '(a Level-2A SAFE product has one)')
    md_path = f'{prefix}/{MTD_L2A}'
    md = parse_metadata(meta[MTD_L2A], md_path)
    check_level(name, md.product_type, md.level_tag)
    granules = {m.split('/')[1] for m in members
                if m.startswith('GRANULE/') and m.count('/') > 2}
    if len(granules) > 1:
        raise ProductError(f'{path}: {len(granules)} granules in GRANULE/; '
                           'only single-tile products (every product since '
                           '2016-12) are supported')
    listed = {f'{f}.jp2' for f in md.image_files}
    candidates = []
    for member in members:
        if not member.startswith('GRANULE/') or '/IMG_DATA/' not in member \
                or (listed and member not in listed):
            continue
        match = _IMAGE.search(member)
        if match and match.group('band').upper() in PRODUCT_ASSETS:
            candidates.append((match.group('band').upper(),
                               int(match.group('res')), member))
    found = pick_finest(candidates)
    missing = [b for b in PRODUCT_ASSETS if b not in found]
    if missing:
        raise ProductError(
            f'{path}: no image file for {missing} in GRANULE/*/IMG_DATA/'
            'R10m|R20m (expected <tile>_<time>_<band>_<res>m.jp2)')
    files = {b: f'{prefix}/{found[b]}' for b in PRODUCT_ASSETS}
    if md.start_time is not None:
        when = md.start_time
    elif parts is not None:
        when = name_datetime(parts['sensing'])
    else:
        raise ProductError(f'{md_path}: no PRODUCT_START_TIME and the '
                           f'product name {name!r} carries no date')
    return SafeProduct(name=name, path=path, metadata=md,
                       metadata_path=md_path, files=files, datetime=when)


def stated_offsets(md: SafeMetadata) -> Optional[Dict[str, float]]:
    """The offsets of the dataset's bands that the metadata states."""
    if md.offsets is None:
        return None
    return {b: md.offsets[b] for b in PRODUCT_BANDS if b in md.offsets}
