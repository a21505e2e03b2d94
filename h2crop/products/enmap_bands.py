"""The 218 EnMAP bands of the H2Crop cube, as centre wavelengths (nm).

The dataset's EnMAP cube has 218 bands (``ENMAP_BANDS``); an EnMAP L2A
product has 224, ordered by wavelength (VNIR and SWIR interleaved in their
overlap at 902-993 nm). The authors do not publish which 218; the ones
here are inferred (``docs/products.md#which-218-bands``): all L2A
bands but the six that the DLR L2A processor fills with its no-data value
(-32768): L2A bands 130-135, centred at 1331.2, 1343.2, 1355.1, 1367.1,
1379.0 and 1390.8 nm, inside the 1.4 um water-vapour absorption. Of the
selections tested, only this one puts the green peak, the red absorption,
the red edge and the O2-A dip of the published per-band means at their
physical wavelengths, and their two large jumps across its two gaps.

The wavelengths are those of a real L2A product (datatake 1867, 24 July
2022, processor V01.03.02), as listed in the band names of the EnMAP-Box's
``enmapbox/exampledata/enmap_potsdam_srf.geojson``, rounded to 0.1 nm.
A product's own wavelengths (its METADATA.XML) are matched to these within
a tolerance (:func:`h2crop.products.enmap.select_bands`).
"""
from typing import Tuple

#: Centre wavelengths of the cube's bands, in cube order (nm).
H2CROP_ENMAP_WAVELENGTHS: Tuple[float, ...] = (
    418.2, 423.9, 429.3, 434.5, 439.6, 444.5, 449.4, 454.2,
    458.9, 463.6, 468.3, 472.9, 477.6, 482.3, 486.9, 491.6,
    496.3, 501.1, 505.9, 510.7, 515.5, 520.4, 525.3, 530.3,
    535.3, 540.3, 545.4, 550.5, 555.7, 560.9, 566.2, 571.6,
    577.0, 582.5, 588.0, 593.6, 599.3, 605.0, 610.8, 616.7,
    622.7, 628.8, 634.9, 641.1, 647.3, 653.6, 660.0, 666.4,
    672.9, 679.5, 686.1, 692.8, 699.6, 706.4, 713.3, 720.3,
    727.3, 734.4, 741.6, 748.8, 756.1, 763.5, 770.9, 778.3,
    785.8, 793.4, 801.0, 808.7, 816.4, 824.1, 831.9, 839.7,
    847.6, 855.5, 863.5, 871.4, 879.4, 887.5, 895.5, 902.3,
    903.6, 911.7, 911.9, 919.8, 921.6, 928.0, 931.5, 936.1,
    941.5, 944.2, 951.7, 952.4, 960.5, 961.9, 968.6, 972.3,
    976.8, 982.9, 984.9, 993.1, 993.5, 1004.2, 1015.0, 1026.0,
    1037.0, 1048.2, 1059.4, 1070.7, 1082.1, 1093.6, 1105.2, 1116.8,
    1128.5, 1140.2, 1152.0, 1163.8, 1175.7, 1187.6, 1199.5, 1211.4,
    1223.4, 1235.3, 1247.3, 1259.3, 1271.3, 1283.3, 1295.3, 1307.3,
    1319.2, 1461.5, 1473.1, 1484.7, 1496.2, 1507.8, 1519.2, 1530.6,
    1542.0, 1553.4, 1564.7, 1575.9, 1587.1, 1598.3, 1609.4, 1620.4,
    1631.4, 1642.4, 1653.3, 1664.2, 1675.0, 1685.8, 1696.5, 1707.2,
    1717.8, 1728.4, 1738.9, 1749.4, 1759.8, 1939.4, 1949.0, 1958.5,
    1968.0, 1977.4, 1986.7, 1996.1, 2005.4, 2014.6, 2023.8, 2033.0,
    2042.1, 2051.2, 2060.2, 2069.2, 2078.2, 2087.1, 2096.0, 2104.9,
    2113.7, 2122.4, 2131.2, 2139.9, 2148.5, 2157.2, 2165.7, 2174.3,
    2182.8, 2191.3, 2199.7, 2208.1, 2216.5, 2224.8, 2233.1, 2241.4,
    2249.7, 2257.9, 2266.0, 2274.2, 2282.3, 2290.4, 2298.4, 2306.4,
    2314.4, 2322.4, 2330.3, 2338.2, 2346.1, 2353.9, 2361.7, 2369.4,
    2377.2, 2384.9, 2392.6, 2400.2, 2407.8, 2415.4, 2423.0, 2430.6,
    2438.1, 2445.5,
)
