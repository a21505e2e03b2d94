"""Installation script of the h2crop package."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    """Read ``__version__`` from ``h2crop/version.py`` without importing it."""
    scope: dict = {}
    with open(osp.join(HERE, 'h2crop', 'version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


INSTALL_REQUIRES = [
    'torch>=2.6',
    'torchvision>=0.21',
    'mmengine>=0.10.4,<0.11',
    'mmcv-lite>=2.0.0,<2.2.0',
    'mmsegmentation==1.2.2',
    'timm>=1.0,<2',
    'einops>=0.7',
    'h5py>=3.8',
    'numpy>=1.24',
    'prettytable>=3.0',
    'matplotlib>=3.7',
    # geodata: wheels from PyPI carry GDAL / GEOS (no system libraries)
    'rasterio>=1.3.9',
    'pyogrio>=0.7',
    'shapely>=2.0',
    # satellite products (h2crop.products): STAC items, lazy chunked arrays
    'pystac>=1.10',
    'odc-stac>=0.3.10,<0.6',
    'xarray>=2024.1',
    'dask>=2024.1',
    'rioxarray>=0.15',
]

EXTRAS_REQUIRE = {
    'tests': ['pytest>=7', 'ruff>=0.5'],
    'dev': ['pytest>=7', 'ruff>=0.5', 'pre-commit>=3'],
    # `pip install .[tensorboard]`, then tools/train.py --tensorboard
    'tensorboard': ['tensorboard'],
    # `pip install .[online]`: search a STAC API (tools/dataset_converters/
    # s2_monthly.py --stac-api); never used by the tests
    'online': ['pystac-client>=0.7'],
}

setup(
    name='h2crop',
    version=read_version(),
    description='Hierarchical crop type mapping from Sentinel-2 time series '
    'and EnMAP hyperspectral imagery (H2Crop re-implementation).',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    # data tables the package reads (code-map presets of the converters)
    package_data={'h2crop.datasets.converters': ['code_maps/*.csv']},
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    license='Apache-2.0',
    zip_safe=False,
)
