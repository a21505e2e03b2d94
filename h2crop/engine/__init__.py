"""h2crop.engine."""
