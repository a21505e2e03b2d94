"""h2crop: hierarchical crop type mapping from Sentinel-2 and EnMAP."""
from .version import __version__

__all__ = ['__version__']
