"""Metrics registered in ``h2crop.registry.METRICS``."""
from .hierarchical_seg_metric import HierarchicalSegMetric

__all__ = ['HierarchicalSegMetric']
