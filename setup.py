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
    # PyPI wheels bundle GDAL: no system GDAL needed (scene maps, COGs)
    'rasterio>=1.3',
]

setup(
    name='h2crop',
    version=read_version(),
    description='Hierarchical crop type mapping from Sentinel-2 time series '
    'and EnMAP hyperspectral imagery (H2Crop re-implementation).',
    long_description=open(osp.join(HERE, 'README.md'), encoding='utf-8').read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.10',
    install_requires=INSTALL_REQUIRES,
    extras_require={'tests': ['pytest>=7']},
    license='Apache-2.0',
    zip_safe=False,
)
