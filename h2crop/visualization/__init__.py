"""h2crop.visualization."""
