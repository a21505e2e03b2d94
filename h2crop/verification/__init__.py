"""Reference-vector checks: the paper model against the original's outputs.

Used by ``tools/analysis_tools/verify_reference.py`` and the tests. Each
check builds our model from a case description, loads the original
implementation's weights through our loaders and compares every expected
tensor.
"""
