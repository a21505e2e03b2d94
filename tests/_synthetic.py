"""Tiny synthetic H2Crop datasets for tests (shared by all test folders).

Use ``from tests._synthetic import make_tiny_dataset`` (or a relative import)
or the fixture the root ``conftest.py`` builds on it.
"""
import os
import os.path as osp
from typing import Union

from h2crop.datasets.synthetic import make_synthetic_dataset


def make_tiny_dataset(tmp_path: Union[str, os.PathLike],
                      num_samples: int = 6,
                      size: int = 48,
                      seed: int = 0,
                      **kwargs) -> str:
    """Write a tiny synthetic dataset in ``tmp_path/h2crop``; return its root.

    The root holds ``h5_data/``, ``data_lists/{train,val,test}.txt`` (every
    split non-empty), ``cascade_labels.csv`` (a strict tree with the paper's
    counts unless ``taxonomy=`` is passed) and ``synthetic_info.json``.

    Args:
        tmp_path: A temporary folder (e.g. pytest's ``tmp_path``).
        num_samples: Tiles (>= 3).
        size: Tile side, a multiple of 3 (EnMAP is ``size // 3``).
        seed: Generator seed.
        **kwargs: More :func:`make_synthetic_dataset` options
            (``taxonomy``, ``prior_change_fraction``, ``spelling``).
    """
    root = osp.join(str(tmp_path), 'h2crop')
    make_synthetic_dataset(root, num_samples, size=size, seed=seed, **kwargs)
    return root
