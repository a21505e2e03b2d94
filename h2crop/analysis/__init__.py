"""h2crop.analysis: ablation runs and the per-pixel baseline."""
from .ablation import parse_variant, run_ablation, write_tables
from .pixel_baseline import PixelBaseline, baseline_from_cfg, pixel_features

__all__ = [
    'parse_variant', 'run_ablation', 'write_tables', 'PixelBaseline',
    'baseline_from_cfg', 'pixel_features'
]
