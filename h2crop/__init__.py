"""h2crop: hierarchical crop type mapping from Sentinel-2 and EnMAP.

A re-implementation of the system of the H2Crop paper: W. Li, S. Liang,
Y. Zhang et al., "Fine-grained Hierarchical Crop Type Classification from
Integrated Hyperspectral EnMAP Data and Multispectral Sentinel-2 Time
Series: A Large-scale Dataset and Dual-stream Transformer Method", 2025,
arXiv 2506.06155. Design notes: ``docs/design.md``.
"""
from .version import __version__

__all__ = ['__version__']
