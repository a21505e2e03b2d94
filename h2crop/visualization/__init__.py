"""Pictures of tiles, predictions and per-level scores."""
from .legend import level_palette, plot_class_maps
from .plots import (
    colorize,
    plot_level_scores,
    plot_tile_predictions,
    s2_true_color,
)

__all__ = [
    'level_palette', 'plot_class_maps', 'colorize', 'plot_level_scores',
    'plot_tile_predictions', 's2_true_color'
]
