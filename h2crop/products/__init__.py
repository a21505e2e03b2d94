"""Readers of satellite products that turn them into the dataset's rasters."""
