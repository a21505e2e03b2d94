"""Per-level colour tables for a multi-band prediction map.

GeoTIFF keeps a colour table only on single-band (paletted) images, so the
COG of a scene (bands ``level1..level4``, confidences, deepest level) cannot
carry one per class band. Beside the map, :func:`write_level_vrts` writes one
small VRT per level, ``<map>_<level>.vrt``: a view of that band of the COG
(read in place, no copy) with the level's colour table, its class names as
category names and nodata 255. QGIS, GDAL and rasterio open it like any
raster: the classes show in their colours with their names.
"""
import os.path as osp
from typing import List, Sequence
from xml.sax.saxutils import escape

import numpy as np
import rasterio

from h2crop.visualization.legend import level_palette

#: Value of "no prediction" in the class bands.
NODATA = 255


def level_vrt_path(map_path: str, level: str) -> str:
    """Path of the paletted view of one level beside ``map_path``."""
    return f'{osp.splitext(map_path)[0]}_{level}.vrt'


def _vrt_xml(map_path: str, src, vrt_path: str, band: int,
             names: Sequence[str], colours: np.ndarray) -> str:
    """VRT document of band ``band`` of ``map_path`` with a colour table.

    Args:
        map_path: The prediction map (GeoTIFF / COG).
        src: The open map (size, CRS and transform are read from it).
        vrt_path: Where the VRT will be written (sources are relative).
        band: 1-based band of the level in ``map_path``.
        names: Class names of the level, id order.
        colours: uint8 (N, 3) colours of the classes.
    """
    width, height = src.width, src.height
    wkt = src.crs.to_wkt() if src.crs else ''
    gt = src.transform.to_gdal()
    source = osp.relpath(osp.abspath(map_path),
                         osp.dirname(osp.abspath(vrt_path)))
    entries = []
    for value in range(NODATA + 1):
        if value < len(colours):
            r, g, b = (int(c) for c in colours[value])
            alpha = 255
        else:  # ids beyond the taxonomy and nodata: transparent
            r = g = b = alpha = 0
        entries.append(f'      <Entry c1="{r}" c2="{g}" c3="{b}" '
                       f'c4="{alpha}"/>')
    categories = [f'      <Category>{escape(str(n))}</Category>'
                  for n in names]
    return '\n'.join([
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f'  <SRS>{escape(wkt)}</SRS>',
        '  <GeoTransform>' + ', '.join(repr(float(v)) for v in gt) +
        '</GeoTransform>',
        '  <VRTRasterBand dataType="Byte" band="1">',
        f'    <NoDataValue>{NODATA}</NoDataValue>',
        '    <ColorInterp>Palette</ColorInterp>',
        '    <ColorTable>', *entries, '    </ColorTable>',
        '    <CategoryNames>', *categories, '    </CategoryNames>',
        '    <SimpleSource>',
        '      <SourceFilename relativeToVRT="1">'
        f'{escape(source)}</SourceFilename>',
        f'      <SourceBand>{band}</SourceBand>',
        f'      <SrcRect xOff="0" yOff="0" xSize="{width}" '
        f'ySize="{height}"/>',
        f'      <DstRect xOff="0" yOff="0" xSize="{width}" '
        f'ySize="{height}"/>',
        '    </SimpleSource>',
        '  </VRTRasterBand>',
        '</VRTDataset>', ''])


def write_level_vrts(map_path: str, levels: Sequence[str],
                     class_names: Sequence[Sequence[str]]) -> List[str]:
    """Write ``<map>_<level>.vrt`` for every class band of a map.

    Args:
        map_path: Prediction map whose bands 1..L are the class ids of
            ``levels`` (the layout of ``tools/infer.py`` scenes).
        levels: Level names of bands 1..L.
        class_names: Per level, the class names in id order.

    Returns:
        The VRT paths, one per level.
    """
    paths = []
    with rasterio.open(map_path) as src:
        for band, (level, names) in enumerate(zip(levels, class_names),
                                              start=1):
            path = level_vrt_path(map_path, level)
            xml = _vrt_xml(map_path, src, path, band, names,
                           level_palette(len(names)))
            with open(path, 'w', encoding='utf-8') as f:
                f.write(xml)
            paths.append(path)
    return paths
