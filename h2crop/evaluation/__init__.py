"""h2crop.evaluation."""
