"""Metrics registered in ``h2crop.registry.METRICS``."""
from .hierarchical_seg_metric import HierarchicalSegMetric
from .parcel_metric import ParcelMetric

__all__ = ['HierarchicalSegMetric', 'ParcelMetric']
