"""Evaluation: the paper's hierarchical pixel metric and parcel metrics."""
from .metrics import (CLASS_METRICS, HIERARCHY_KEY, LEVEL_MEAN_METRICS,
                      SUBSETS, SUMMARY_METRICS, HierarchicalSegMetric,
                      class_metrics, summary_metrics)
from .parcel_metric import ParcelMetric

__all__ = [
    'HierarchicalSegMetric', 'ParcelMetric', 'class_metrics', 'summary_metrics',
    'CLASS_METRICS', 'SUMMARY_METRICS', 'LEVEL_MEAN_METRICS', 'SUBSETS',
    'HIERARCHY_KEY'
]
