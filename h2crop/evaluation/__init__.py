"""Evaluation: the hierarchical segmentation metric of the paper."""
from .metrics import (CLASS_METRICS, HIERARCHY_KEY, LEVEL_MEAN_METRICS,
                      SUBSETS, SUMMARY_METRICS, HierarchicalSegMetric,
                      class_metrics, summary_metrics)

__all__ = [
    'HierarchicalSegMetric', 'class_metrics', 'summary_metrics',
    'CLASS_METRICS', 'SUMMARY_METRICS', 'LEVEL_MEAN_METRICS', 'SUBSETS',
    'HIERARCHY_KEY'
]
