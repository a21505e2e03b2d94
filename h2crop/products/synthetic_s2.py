"""Sentinel-2 L2A products written in their real formats (tests, demos).

Facts the fixtures follow (docs/products.md#sentinel-2-l2a):

* SAFE: ``S2B_MSIL2A_<sensing>_N<baseline>_R<orbit>_T<tile>_<disc>.SAFE``
  with ``MTD_MSIL2A.xml`` (PSD namespace, ``Product_Info`` with
  ``PRODUCT_TYPE`` S2MSI2A, ``PROCESSING_BASELINE``, ``PRODUCT_START_TIME``,
  ``Granule_List/Granule/IMAGE_FILE``; ``Product_Image_Characteristics``
  with ``Special_Values``, ``QUANTIFICATION_VALUES_LIST``,
  ``BOA_ADD_OFFSET_VALUES_LIST`` (13 ``BOA_ADD_OFFSET band_id``, -1000,
  from baseline 04.00) and ``Spectral_Information_List``) and
  ``GRANULE/L2A_T<tile>_A<abs orbit>_<time>/IMG_DATA/R10m|R20m/
  T<tile>_<sensing>_<band>_<res>m.jp2``: uint16 JPEG 2000 reflectance
  (DN 0 = no data), uint8 SCL at 20 m. R10m holds B02 B03 B04 B08, R20m
  B02..B07 B8A B11 B12 and SCL.
* Earth Search (``sentinel-2-l2a``) items: asset keys blue, green, red,
  rededge1..3, nir, nir08, swir16, swir22, scl (plus ``-jp2`` twins),
  ``raster:bands`` with nodata 0, uint16, scale 0.0001, offset -0.1 (even
  when ``earthsearch:boa_offset_applied`` is true), ``proj:epsg`` on the
  item and ``proj:shape`` / ``proj:transform`` per asset.
* Copernicus Data Space items: keys ``B02_10m``, ``B02_20m``, ``B05_20m``,
  ``SCL_20m``, ...; Planetary Computer items: keys ``B02`` .. ``B8A``,
  ``SCL`` with ``s2:processing_baseline`` and no offset fields.

The scene: every product draws its own true reflectance (x 10000) per band
at the band's native resolution and an SCL map; the files hold the digital
numbers the product's baseline implies (reflectance + 1000 from 04.00).
"""
import datetime as dt
import json
import os
import os.path as osp
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from h2crop.products.s2_metadata import NATIVE_RESOLUTION, PRODUCT_BANDS, SCL

#: UTM 32N, the zone of tile 32TQM.
CRS_32632 = CRS.from_epsg(32632)
#: Upper-left corner of the fixtures' tile (multiples of 20 m, as the real
#: tile corners, so the 10, 20 and 60 m grids share it).
ORIGIN = (699960.0, 5100000.0)
#: Side of the fixtures' 10 m grid.
SIZE = 60
#: 13 bands of MTD_MSIL2A.xml ``Spectral_Information`` (bandId order).
MTD_BANDS = (('B1', 60), ('B2', 10), ('B3', 10), ('B4', 10), ('B5', 20),
             ('B6', 20), ('B7', 20), ('B8', 10), ('B8A', 20), ('B9', 60),
             ('B10', 60), ('B11', 20), ('B12', 20))
#: Earth Search asset keys.
EARTH_SEARCH_KEYS = {'B02': 'blue', 'B03': 'green', 'B04': 'red',
                     'B05': 'rededge1', 'B06': 'rededge2', 'B07': 'rededge3',
                     'B08': 'nir', 'B8A': 'nir08', 'B11': 'swir16',
                     'B12': 'swir22', SCL: 'scl'}
MTD_NS = 'https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd'


@dataclass
class Acquisition:
    """One product's truth: reflectance x 10000 and SCL, native grids.

    Args:
        when: Sensing start.
        refl: Band -> reflectance x 10000 (int), (n, n) with n = side x
            10 / native resolution.
        scl: SCL classes at 20 m.
        nodata: 10 m mask of pixels with no data (DN 0, SCL 0).
        origin: Upper-left corner.
        crs: CRS of the files.
    """

    when: dt.datetime
    refl: Dict[str, np.ndarray]
    scl: np.ndarray
    nodata: np.ndarray
    origin: tuple = ORIGIN
    crs: CRS = CRS_32632
    extra: dict = field(default_factory=dict)

    def dn(self, band: str, offset: int) -> np.ndarray:
        """Digital numbers of ``band`` (uint16, its native grid).

        Args:
            band: Band name (``'B02'`` ..).
            offset: DN offset of the product's baseline (1000 from 04.00).

        Returns:
            Reflectance x 10000 + ``offset``, DN 0 where there is no data.
        """
        res = NATIVE_RESOLUTION[band]
        nod = self.nodata[::res // 10, ::res // 10]
        out = self.refl[band].astype(np.int64) + offset
        out[nod] = 0
        return out.astype(np.uint16)

    def scl_map(self) -> np.ndarray:
        """The SCL band (uint8, 20 m): class 0 where there is no data."""
        out = self.scl.copy()
        out[self.nodata[::2, ::2]] = 0
        return out


def make_acquisition(rng: np.random.Generator, when: dt.datetime,
                     size: int = SIZE, cloud: float = 0.3,
                     nodata_cols: int = 0, origin=ORIGIN,
                     crs=CRS_32632) -> Acquisition:
    """A random acquisition: reflectances 100..6000, SCL mostly clear."""
    refl = {}
    for band in PRODUCT_BANDS:
        n = size * 10 // NATIVE_RESOLUTION[band]
        refl[band] = rng.integers(100, 6000, (n, n))
    classes = np.array([4, 5, 6, 7, 2, 3, 8, 9, 10, 11, 1])
    clear_p = np.array([0.5, 0.2, 0.05, 0.05])
    cloudy_p = np.full(7, 1 / 7)
    p = np.concatenate([clear_p / clear_p.sum() * (1 - cloud),
                        cloudy_p * cloud])
    scl = rng.choice(classes, size=(size // 2, size // 2), p=p)
    nodata = np.zeros((size, size), bool)
    if nodata_cols:
        nodata[:, :nodata_cols] = True
    return Acquisition(when, refl, scl.astype(np.uint8), nodata, origin, crs)


def write_raster(path: str, data: np.ndarray, res: float, acq: Acquisition,
                 driver: str = 'JP2OpenJPEG', nodata=None,
                 scale: Optional[float] = None,
                 offset: Optional[float] = None) -> str:
    """One band file (lossless JPEG 2000 by default, else GTiff / COG)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    h, w = data.shape
    transform = Affine(res, 0, acq.origin[0], 0, -res, acq.origin[1])
    opts = dict(QUALITY=100, REVERSIBLE='YES') \
        if driver == 'JP2OpenJPEG' else {}
    if driver == 'COG':
        tmp = path + '.tmp.tif'
        write_raster(tmp, data, res, acq, 'GTiff', nodata, scale, offset)
        with rasterio.open(tmp) as src:
            rasterio.shutil.copy(src, path, driver='COG', compress='deflate')
        os.remove(tmp)
        return path
    with rasterio.open(path, 'w', driver=driver, width=w, height=h, count=1,
                       dtype=data.dtype, crs=acq.crs, transform=transform,
                       nodata=nodata, **opts) as dst:
        dst.write(data, 1)
        if scale is not None:
            dst.scales = (scale, )
            dst.offsets = (offset or 0.0, )
    return path


def _stamp(when: dt.datetime) -> str:
    return when.strftime('%Y%m%dT%H%M%S')


def safe_name(acq: Acquisition, baseline: str = '0509', tile: str = '32TQM',
              mission: str = 'S2B', level: str = 'L2A',
              orbit: str = '008') -> str:
    """``S2B_MSIL2A_<sensing>_N0509_R008_T32TQM_<discriminator>``."""
    disc = acq.when + dt.timedelta(hours=3, minutes=8, seconds=47)
    return (f'{mission}_MSI{level}_{_stamp(acq.when)}_N{baseline}_R{orbit}_'
            f'T{tile}_{_stamp(disc)}')


def _mtd_xml(acq: Acquisition, name: str, baseline: str, images, level: str,
             granule: str, with_offsets: bool) -> str:
    major, minor = baseline[:2], baseline[2:]
    start = acq.when.strftime('%Y-%m-%dT%H:%M:%S.024Z')
    stop = start
    files = '\n'.join(f'            <IMAGE_FILE>{f}</IMAGE_FILE>'
                      for f in images)
    offsets = ''
    if with_offsets:
        rows = '\n'.join(f'        <BOA_ADD_OFFSET band_id="{i}">-1000'
                         '</BOA_ADD_OFFSET>' for i in range(13))
        offsets = (f'      <BOA_ADD_OFFSET_VALUES_LIST>\n{rows}\n'
                   '      </BOA_ADD_OFFSET_VALUES_LIST>\n')
    spectral = '\n'.join(
        f'        <Spectral_Information bandId="{i}" physicalBand="{b}">\n'
        f'          <RESOLUTION>{r}</RESOLUTION>\n'
        '        </Spectral_Information>'
        for i, (b, r) in enumerate(MTD_BANDS))
    lv = level[1:]
    ptype = 'S2MSI2A' if level == 'L2A' else 'S2MSI1C'
    return f'''<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<n1:Level-{lv}_User_Product xmlns:n1="{MTD_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{start}</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>{stop}</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-{lv}</PROCESSING_LEVEL>
      <PRODUCT_TYPE>{ptype}</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{major}.{minor}</PROCESSING_BASELINE>
      <PRODUCT_DOI>https://doi.org/10.5270/S2_-znk9xsj</PRODUCT_DOI>
      <GENERATION_TIME>{start}</GENERATION_TIME>
      <Product_Organisation>
        <Granule_List>
          <Granule datastripIdentifier="DS"
                   granuleIdentifier="{granule}" imageFormat="JPEG2000">
{files}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <Special_Values>
        <SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX>
      </Special_Values>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
        <WVP_QUANTIFICATION_VALUE unit="cm">1000.0</WVP_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
{offsets}      <Spectral_Information_List>
{spectral}
      </Spectral_Information_List>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-{lv}_User_Product>
'''


def write_safe(root: str, acq: Acquisition, baseline: str = '0509',
               tile: str = '32TQM', level: str = 'L2A',
               with_offsets: Optional[bool] = None, as_zip: bool = False,
               drop: Sequence[str] = (), mission: str = 'S2B') -> str:
    """A SAFE product of ``acq`` under ``root``; returns its path.

    Args:
        root: Folder for the product.
        acq: The acquisition's truth.
        baseline: ``Nxxyy`` digits; from 0400 the DN carry +1000 and the
            metadata lists BOA_ADD_OFFSET (unless ``with_offsets`` says).
        tile: MGRS tile.
        level: ``'L2A'`` or ``'L1C'`` (a Level-1C tree and MTD_MSIL1C.xml).
        with_offsets: Write BOA_ADD_OFFSET_VALUES_LIST (default: baseline
            >= 0400).
        as_zip: Write ``<name>.SAFE.zip`` holding the ``.SAFE`` folder.
        drop: Band files to leave out.
        mission: ``S2A`` / ``S2B`` / ``S2C``.
    """
    new = int(baseline) >= 400
    with_offsets = new if with_offsets is None else with_offsets
    offset = 1000 if new else 0
    name = safe_name(acq, baseline, tile, mission, level)
    safe = osp.join(root, f'{name}.SAFE')
    granule_time = _stamp(acq.when + dt.timedelta(seconds=2))
    granule = f'{level}_T{tile}_A041859_{granule_time}'
    images = []
    stamp = _stamp(acq.when)
    if level == 'L2A':
        plan = [('R10m', b, 10) for b in ('B02', 'B03', 'B04', 'B08')] + \
            [('R20m', b, 20) for b in ('B02', 'B03', 'B04', 'B05', 'B06',
                                       'B07', 'B8A', 'B11', 'B12', SCL)]
    else:
        plan = [('', b, NATIVE_RESOLUTION[b]) for b in PRODUCT_BANDS]
    for folder, band, res in plan:
        if band in drop:
            continue
        if level == 'L2A':
            rel = (f'GRANULE/{granule}/IMG_DATA/{folder}/T{tile}_{stamp}_'
                   f'{band}_{res}m')
        else:
            rel = f'GRANULE/{granule}/IMG_DATA/T{tile}_{stamp}_{band}'
        images.append(rel)
        if band == SCL:
            data = acq.scl_map()
        elif res == NATIVE_RESOLUTION[band]:
            data = acq.dn(band, offset)
        else:  # a 10 m band's 20 m version: 2 x 2 means, as Sen2Cor
            full = acq.dn(band, offset).astype(np.float64)
            data = full.reshape(full.shape[0] // 2, 2, -1, 2).mean((1, 3))
            data = np.rint(data).astype(np.uint16)
        write_raster(osp.join(safe, f'{rel}.jp2'), data, res, acq)
    mtd = 'MTD_MSIL2A.xml' if level == 'L2A' else 'MTD_MSIL1C.xml'
    with open(osp.join(safe, mtd), 'w') as f:
        f.write(_mtd_xml(acq, name, baseline, images, level, granule,
                         with_offsets and level == 'L2A'))
    os.makedirs(osp.join(safe, 'GRANULE', granule, 'QI_DATA'), exist_ok=True)
    with open(osp.join(safe, 'GRANULE', granule, 'MTD_TL.xml'), 'w') as f:
        f.write('<?xml version="1.0"?><n1:Level-2A_Tile_ID xmlns:n1="x"/>')
    if not as_zip:
        return safe
    archive = osp.join(root, f'{name}.SAFE.zip')
    with zipfile.ZipFile(archive, 'w', zipfile.ZIP_STORED) as zf:
        for folder, _, files in os.walk(safe):
            for fname in files:
                full = osp.join(folder, fname)
                zf.write(full, osp.relpath(full, root))
    import shutil
    shutil.rmtree(safe)
    return archive


def write_band_files(folder: str, acq: Acquisition, offset: int,
                     naming: str = 'plain', tags: bool = False,
                     driver: str = 'COG') -> Dict[str, str]:
    """One COG per band: ``B02.tif`` (plain) or ``blue.tif`` (earth-search).

    Args:
        folder: Where to write.
        acq: The truth.
        offset: DN offset the files carry.
        naming: ``'plain'`` (B02.tif), ``'earth-search'`` (asset keys).
        tags: Write scale 0.0001 / offset -offset/10000 GeoTIFF tags.
        driver: ``'COG'`` or ``'GTiff'``.
    """
    out = {}
    for band in PRODUCT_BANDS + (SCL, ):
        res = NATIVE_RESOLUTION[band]
        data = acq.scl_map() if band == SCL else acq.dn(band, offset)
        stem = EARTH_SEARCH_KEYS[band] if naming == 'earth-search' else band
        kw = dict(scale=1e-4, offset=-offset / 1e4) \
            if tags and band != SCL else {}
        out[band] = write_raster(osp.join(folder, f'{stem}.tif'), data, res,
                                 acq, driver, nodata=0, **kw)
    return out


def _asset(href: str, band: str, res: float, acq: Acquisition, *,
           proj: bool = True, offset: Optional[float] = None,
           eo_name: Optional[str] = None) -> dict:
    n = SIZE * 10 // int(res)
    asset = {'href': href,
             'type': 'image/tiff; application=geotiff; '
                     'profile=cloud-optimized',
             'roles': ['data', 'reflectance']}
    if proj:
        asset['proj:shape'] = [n, n]
        asset['proj:transform'] = [res, 0, acq.origin[0], 0, -res,
                                   acq.origin[1]]
    rb = {'nodata': 0, 'data_type': 'uint8' if band == SCL else 'uint16',
          'spatial_resolution': res}
    if offset is not None and band != SCL:
        rb.update(bits_per_sample=15, scale=0.0001, offset=offset)
    asset['raster:bands'] = [rb]
    if eo_name:
        asset['eo:bands'] = [{'name': eo_name, 'common_name': eo_name}]
    return asset


def stac_item(acq: Acquisition, files: Dict[str, str], style: str,
              baseline: str = '05.09', offset_applied: Optional[bool] = None,
              tile: str = '32TQM', proj: bool = True) -> dict:
    """A STAC Item dict of ``acq`` whose assets point at ``files``.

    Args:
        acq: The truth.
        files: Band -> local file (relative hrefs are kept relative).
        style: ``'earth-search'``, ``'cdse'`` or ``'planetary-computer'``.
        baseline: ``s2:processing_baseline`` / ``processing:version``.
        offset_applied: ``earthsearch:boa_offset_applied`` (earth-search).
        tile: MGRS tile.
        proj: Write projection fields (else the loader reads the files).
    """
    day = acq.when.strftime('%Y%m%d')
    props = {'datetime': acq.when.strftime('%Y-%m-%dT%H:%M:%S.024000Z'),
             'platform': 'sentinel-2b', 'constellation': 'sentinel-2',
             'instruments': ['msi'], 'eo:cloud_cover': 12.5}
    exts = ['https://stac-extensions.github.io/eo/v1.1.0/schema.json',
            'https://stac-extensions.github.io/raster/v1.1.0/schema.json']
    if proj:
        exts.append('https://stac-extensions.github.io/projection/v1.1.0/'
                    'schema.json')
        props['proj:epsg'] = acq.crs.to_epsg()
    assets = {}
    if style == 'earth-search':
        pid = f'S2B_{tile}_{day}_0_L2A'
        props.update({'s2:product_type': 'S2MSI2A',
                      's2:processing_baseline': baseline,
                      'earthsearch:boa_offset_applied': bool(offset_applied)})
        for band, href in files.items():
            key = EARTH_SEARCH_KEYS[band]
            assets[key] = _asset(href, band, NATIVE_RESOLUTION[band], acq,
                                 proj=proj, offset=-0.1, eo_name=key)
            jp2 = dict(assets[key], href=href + '.jp2', type='image/jp2')
            assets[f'{key}-jp2'] = jp2
        assets['thumbnail'] = {'href': 'thumb.jpg', 'type': 'image/jpeg',
                               'roles': ['thumbnail']}
        collection = 'sentinel-2-l2a'
    elif style == 'cdse':
        pid = (f'S2B_MSIL2A_{acq.when:%Y%m%dT%H%M%S}_N{baseline[:2]}'
               f'{baseline[3:]}_R008_T{tile}_{day}T134516')
        props.update({'product:type': 'S2MSI2A', 'processing:level': 'L2',
                      'processing:version': baseline})
        for band, href in files.items():
            res = NATIVE_RESOLUTION[band]
            assets[f'{band}_{res}m'] = _asset(href, band, res, acq,
                                              proj=proj, offset=-0.1)
            if res == 10:  # the 20 m version sits beside (other file)
                assets[f'{band}_20m'] = _asset(href + '.20m.tif', band, 20,
                                               acq, proj=proj, offset=-0.1)
        collection = 'sentinel-2-l2a'
    else:
        pid = (f'S2B_MSIL2A_{acq.when:%Y%m%dT%H%M%S}_R008_T{tile}_'
               f'{day}T134516')
        props.update({'s2:product_type': 'S2MSI2A',
                      's2:processing_baseline': baseline})
        for band, href in files.items():
            assets[band] = _asset(href, band, NATIVE_RESOLUTION[band], acq,
                                  proj=proj, eo_name=band)
        collection = 'sentinel-2-l2a'
    return {'type': 'Feature', 'stac_version': '1.0.0',
            'stac_extensions': exts, 'id': pid, 'collection': collection,
            'geometry': None, 'properties': props, 'links': [],
            'assets': assets}


def write_item_collection(path: str, items: Sequence[dict]) -> str:
    """A FeatureCollection (saved search result) of ``items``."""
    with open(path, 'w') as f:
        json.dump({'type': 'FeatureCollection', 'features': list(items)}, f)
    return path


def write_catalog(folder: str, items: Sequence[dict]) -> str:
    """A self-contained Catalog with one Item JSON per item."""
    os.makedirs(folder, exist_ok=True)
    links = [{'rel': 'root', 'href': './catalog.json',
              'type': 'application/json'}]
    for item in items:
        sub = osp.join(folder, item['id'])
        os.makedirs(sub, exist_ok=True)
        doc = dict(item, links=[
            {'rel': 'root', 'href': '../catalog.json'},
            {'rel': 'parent', 'href': '../catalog.json'}])
        with open(osp.join(sub, f'{item["id"]}.json'), 'w') as f:
            json.dump(doc, f)
        links.append({'rel': 'item', 'href': f'./{item["id"]}/'
                      f'{item["id"]}.json', 'type': 'application/json'})
    path = osp.join(folder, 'catalog.json')
    with open(path, 'w') as f:
        json.dump({'type': 'Catalog', 'stac_version': '1.0.0',
                   'id': 'fixture', 'description': 'test catalogue',
                   'links': links}, f)
    return path
