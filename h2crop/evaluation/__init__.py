"""Evaluation: the hierarchical metric of the paper, its formulas, reports."""
from .functional import (
                         CLASS_METRICS,
                         HIERARCHY_KEY,
                         LEVEL_MEAN_METRICS,
                         SUBSETS,
                         SUMMARY_METRICS,
                         class_metrics,
                         summary_metrics,
)
from .metrics import HierarchicalSegMetric, ParcelMetric

__all__ = [
    'HierarchicalSegMetric', 'ParcelMetric', 'class_metrics',
    'summary_metrics',
    'CLASS_METRICS', 'SUMMARY_METRICS', 'LEVEL_MEAN_METRICS', 'SUBSETS',
    'HIERARCHY_KEY'
]
