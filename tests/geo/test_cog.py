"""COG output: block size of small rasters."""
import numpy as np
import rasterio

from h2crop.geo.cog import COG_BLOCK, cog_blocksize, write_cog

from .._rasters import s2_grid, write_raster


def test_small_rasters_get_small_tiles(tmp_path):
    assert cog_blocksize(12, 12) == 16
    assert cog_blocksize(40, 17) == 48
    assert cog_blocksize(300, 20) == COG_BLOCK == 256
    grid = s2_grid(20, 12)
    data = np.arange(3 * 12 * 20, dtype=np.int16).reshape(3, 12, 20)
    src = write_raster(str(tmp_path / 'a.tif'), data, grid)
    out = str(tmp_path / 'b.tif')
    write_cog(src, out)
    with rasterio.open(out) as ds:
        assert ds.block_shapes[0] == (32, 32)
        assert ds.overviews(1) and (ds.read() == data).all()
        assert ds.profile['tiled']
