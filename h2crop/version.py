"""Version of the h2crop package."""
__version__ = '0.1.0'
