"""h2crop.datasets."""
