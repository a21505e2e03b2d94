"""EnMAP L2A product folders written in the real format (tests, demos).

A product folder holds the files DLR delivers (names
``ENMAP01-____L2A-DT<datatake>_<start>Z_<tile>_V<version>_<processed>Z-
<PART>.<ext>``): METADATA.XML with the real element paths, a 224-band
int16 SPECTRAL_IMAGE.TIF (no-data -32768, the six bad bands 130-135 filled
with it, background outside the swath), the single-band uint8 quality
layers (cloud, cirrus 0..3, haze, snow, cloud shadow, classes 1 land / 2
water / 3 background), the 224-band QL_PIXELMASK.TIF, the test flags and
the VNIR / SWIR quicklooks. Only the pixel count is small.
"""
import os
import os.path as osp
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Dict, Optional

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from h2crop.geo import RasterGrid
from h2crop.products.enmap_bands import H2CROP_ENMAP_WAVELENGTHS

#: The six L2A bands (130-135) the cube drops, filled with no-data.
BAD_BANDS = (1331.2, 1343.2, 1355.1, 1367.1, 1379.0, 1390.8)
BAD_BAND_NUMBERS = tuple(range(130, 136))
#: The 224 L2A wavelengths, band 1 first.
L2A_WAVELENGTHS = tuple(sorted(H2CROP_ENMAP_WAVELENGTHS + BAD_BANDS))
NODATA = -32768
#: VNIR bands are the first 91 by detector; in wavelength order the VNIR
#: ones end at 993.1 nm (enough for the FWHM of the fixture).
VNIR_END_NM = 993.3


def product_name(start: datetime, datatake: int = 4950, tile: int = 3,
                 version: str = 'V010111') -> str:
    """A product name in DLR's pattern."""
    processed = start + timedelta(days=2)
    return (f'ENMAP01-____L2A-DT{datatake:010d}_{start:%Y%m%dT%H%M%S}Z_'
            f'{tile:03d}_{version}_{processed:%Y%m%dT%H%M%S}Z')


@dataclass
class Fixture:
    """What a product fixture holds (for the independent expectations).

    Attributes:
        folder: The product folder.
        name: The product name.
        grid: Its 30 m grid.
        dn: The spectral image, int16 (224, H, W).
        gains: Per band, (224,).
        offsets: Per band, (224,).
        layers: Quality layer -> its array (uint8 (H, W), or (224, H, W)
            for QL_PIXELMASK).
        wavelengths: Per band (nm), (224,).
    """

    folder: str
    name: str
    grid: RasterGrid
    dn: np.ndarray
    gains: np.ndarray
    offsets: np.ndarray
    wavelengths: np.ndarray
    layers: Dict[str, np.ndarray] = field(default_factory=dict)

    def path(self, part: str, ext: str = '.TIF') -> str:
        """``<folder>/<name>-<part><ext>``."""
        return osp.join(self.folder, f'{self.name}-{part}{ext}')

    @property
    def metadata(self) -> str:
        """The METADATA.XML."""
        return self.path('METADATA', '.XML')


def default_dn(height: int, width: int, base: int = 1000,
               seed: int = 0) -> np.ndarray:
    """Distinct DN per band and pixel: int16 (224, H, W)."""
    rng = np.random.default_rng(seed)
    bands = np.arange(224, dtype=np.int32)[:, None, None]
    pix = rng.integers(0, 400, size=(1, height, width))
    return (base + 7 * bands + pix).astype(np.int16)


def _write(path: str, data: np.ndarray, grid: RasterGrid,
           nodata: Optional[float] = None) -> None:
    with rasterio.open(path, 'w', driver='GTiff', width=grid.width,
                       height=grid.height, count=data.shape[0],
                       dtype=data.dtype, crs=grid.crs,
                       transform=grid.transform, nodata=nodata,
                       interleave='pixel') as dst:
        dst.write(data)


def _metadata_xml(fx: Fixture, start: datetime, fwhm: np.ndarray,
                  level: str) -> str:
    bands = ''.join(
        f'      <bandID number="{i + 1}">\n'
        f'        <wavelengthCenterOfBand>{w:.3f}</wavelengthCenterOfBand>\n'
        f'        <FWHMOfBand>{f:.3f}</FWHMOfBand>\n'
        f'        <GainOfBand>{g:.10g}</GainOfBand>\n'
        f'        <OffsetOfBand>{o:.10g}</OffsetOfBand>\n'
        '      </bandID>\n'
        for i, (w, f, g, o) in enumerate(zip(fx.wavelengths, fwhm, fx.gains,
                                             fx.offsets)))
    vnir = [i + 1 for i, w in enumerate(fx.wavelengths) if w < VNIR_END_NM]
    swir = [i + 1 for i, w in enumerate(fx.wavelengths) if w > 900]
    stop = start + timedelta(seconds=4)
    files = ''.join(f'      <file number="{i}"><name>{n}</name></file>\n'
                    for i, n in enumerate(sorted(os.listdir(fx.folder))))
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<level_X>
  <metadata>
    <schema>
      <processingLevel>{level}</processingLevel>
    </schema>
    <name>{fx.name}-METADATA.XML</name>
  </metadata>
  <processing>
    <productFormat>GeoTIFF+Metadata</productFormat>
    <correctionType>Combined</correctionType>
  </processing>
  <base>
    <format>ENMAP_{level}</format>
    <level>{level}</level>
    <temporalCoverage>
      <startTime>{start:%Y-%m-%dT%H:%M:%S}.123456Z</startTime>
      <stopTime>{stop:%Y-%m-%dT%H:%M:%S}.123456Z</stopTime>
    </temporalCoverage>
  </base>
  <specific>
    <code>{level}</code>
    <bandCharacterisation>
{bands}    </bandCharacterisation>
    <vnirProductQuality>
      <expectedChannelsList>{",".join(map(str, vnir))}</expectedChannelsList>
    </vnirProductQuality>
    <swirProductQuality>
      <expectedChannelsList>{",".join(map(str, swir))}</expectedChannelsList>
    </swirProductQuality>
  </specific>
  <product>
    <image>
      <merge>
        <channels>{len(fx.wavelengths)}</channels>
        <name>{fx.name}-SPECTRAL_IMAGE.TIF</name>
        <dimension>
          <columns>{fx.grid.width}</columns>
          <rows>{fx.grid.height}</rows>
        </dimension>
      </merge>
    </image>
    <productFileInformation>
{files}    </productFileInformation>
    <ortho>
      <projection>UTM_Zone{fx.grid.crs.to_epsg() % 100}_North</projection>
      <resolution>{abs(fx.grid.transform.a):g}</resolution>
    </ortho>
  </product>
</level_X>
'''


def make_l2a_product(root: str, grid: RasterGrid, start: datetime,
                     dn: Optional[np.ndarray] = None,
                     layers: Optional[Dict[str, np.ndarray]] = None,
                     gains: Optional[np.ndarray] = None,
                     offsets: Optional[np.ndarray] = None,
                     wavelength_shift: float = 0.0,
                     background: Optional[np.ndarray] = None,
                     level: str = 'L2A', tile: int = 3,
                     nodata_tag: bool = True) -> Fixture:
    """Write an L2A product folder under ``root``.

    Args:
        root: Parent folder; the product folder is named after it.
        grid: The product's 30 m grid.
        start: Acquisition start.
        dn: int16 (224, H, W) spectral values; default :func:`default_dn`.
        layers: Quality layer -> uint8 array to write instead of zeros
            (``'QL_QUALITY_CLOUD'``: (H, W); ``'QL_PIXELMASK'``:
            (224, H, W)).
        gains: Per band; default 1e-4 (reflectance = DN / 10^4).
        offsets: Per band; default 0.
        wavelength_shift: Added to every wavelength (another calibration).
        background: bool (H, W): outside the swath (no-data in every band,
            class 3).
        level: Processing level written into the metadata.
        tile: Tile number of the datatake (part of the name).
        nodata_tag: Write the no-data value into the spectral GeoTIFF.
    """
    h, w = grid.height, grid.width
    dn = default_dn(h, w) if dn is None else dn.copy()
    n = dn.shape[0]
    wav = np.asarray(L2A_WAVELENGTHS[:n], dtype=np.float64) + \
        wavelength_shift
    name = product_name(start, tile=tile)
    folder = osp.join(root, name)
    os.makedirs(folder)
    fx = Fixture(folder=folder, name=name, grid=grid, dn=dn,
                 gains=np.full(n, 1e-4) if gains is None else gains,
                 offsets=np.zeros(n) if offsets is None else offsets,
                 wavelengths=wav)
    for b in BAD_BAND_NUMBERS:
        if b <= n:
            dn[b - 1] = NODATA
    classes = np.ones((h, w), np.uint8)
    if background is not None:
        dn[:, background] = NODATA
        classes[background] = 3
    given = dict(layers or {})
    fx.layers = {
        'QL_QUALITY_CLASSES': given.pop('QL_QUALITY_CLASSES', classes),
        'QL_PIXELMASK': given.pop('QL_PIXELMASK',
                                  np.zeros((n, h, w), np.uint8)),
    }
    for layer in ('QL_QUALITY_CLOUD', 'QL_QUALITY_CIRRUS',
                  'QL_QUALITY_HAZE', 'QL_QUALITY_SNOW',
                  'QL_QUALITY_CLOUDSHADOW', 'QL_QUALITY_TESTFLAGS'):
        fx.layers[layer] = given.pop(layer, np.zeros((h, w), np.uint8))
    assert not given, f'unknown layers {list(given)}'
    _write(fx.path('SPECTRAL_IMAGE'), dn, grid,
           NODATA if nodata_tag else None)
    for layer, arr in fx.layers.items():
        _write(fx.path(layer), arr if arr.ndim == 3 else arr[None], grid)
    quick = np.clip(dn[[47, 29, 12]] // 20, 0, 255).astype(np.uint8)
    _write(fx.path('QL_VNIR'), quick, grid)
    _write(fx.path('QL_SWIR'), quick, grid)
    fwhm = np.where(wav < VNIR_END_NM, 6.5, 10.5)
    with open(fx.metadata, 'w', encoding='utf-8') as f:
        f.write(_metadata_xml(fx, start, fwhm, level))
    return fx


def utm_grid(width: int, height: int, origin=(500010.0, 5300040.0),
             pixel: float = 30.0, epsg: int = 32632) -> RasterGrid:
    """A north-up UTM grid."""
    return RasterGrid(CRS.from_epsg(epsg),
                      Affine(pixel, 0.0, origin[0], 0.0, -pixel, origin[1]),
                      width, height)
