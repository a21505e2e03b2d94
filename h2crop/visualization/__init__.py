"""Pictures of tiles, predictions and per-level scores."""
from .plots import (colorize, plot_level_scores, plot_tile_predictions,
                    s2_true_color)

__all__ = ['colorize', 'plot_level_scores', 'plot_tile_predictions',
           's2_true_color']
