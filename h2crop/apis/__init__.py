"""The public Python API of h2crop (model loading and inference)."""
