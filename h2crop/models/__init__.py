"""h2crop.models."""
