"""Spatially blocked train / val / test split of a tile grid.

Neighbouring tiles share fields, weather and management, so a random split
of tiles leaks: a test tile's parcel continues in the train tile next to it.
Here blocks of ``k x k`` tiles go to one split as a whole, so two tiles of
different splits are at least one block boundary apart.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from h2crop.constants import SPLITS


def block_of(row: int, col: int, block: int) -> Tuple[int, int]:
    """The block ``(row // block, col // block)`` of a tile."""
    return (row // block, col // block)


def blocked_split(positions: Sequence[Tuple[int, int]],
                  block: int,
                  val_fraction: float,
                  test_fraction: float,
                  seed: int = 0) -> Dict[str, List[int]]:
    """Assign tiles to splits block by block.

    Blocks are visited in a seeded random order; each goes to the split
    (val or test) furthest below its target tile count, or to train once
    both targets are met. The first blocks therefore seed val and test, so
    both are non-empty whenever their fraction is positive and there are
    at least three blocks; the last block goes to train if train is still
    empty.

    Args:
        positions: ``(row, col)`` of every tile in the tile grid.
        block: Block side ``k`` in tiles (>= 1).
        val_fraction: Target share of tiles in val.
        test_fraction: Target share of tiles in test.
        seed: Seed of the block order.

    Returns:
        Split name (:data:`~h2crop.constants.SPLITS`) -> indices into
        ``positions``, sorted.

    Raises:
        ValueError: For ``block < 1`` or fractions outside [0, 1) summing
            to 1 or more.
    """
    if block < 1:
        raise ValueError(f'split block {block} must be >= 1 tile')
    for name, frac in (('val_fraction', val_fraction),
                       ('test_fraction', test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f'{name} {frac} outside [0, 1)')
    if val_fraction + test_fraction >= 1:
        raise ValueError(f'val_fraction + test_fraction = '
                         f'{val_fraction + test_fraction} leaves no train '
                         'tiles')
    train, val, test = SPLITS
    members: Dict[Tuple[int, int], List[int]] = {}
    for i, (row, col) in enumerate(positions):
        members.setdefault(block_of(row, col, block), []).append(i)
    keys = sorted(members)
    order = np.random.default_rng([seed, 2654435761]).permutation(len(keys))
    n = len(positions)
    target = {val: val_fraction * n, test: test_fraction * n}
    count = {train: 0, val: 0, test: 0}
    out: Dict[str, List[int]] = {train: [], val: [], test: []}
    for visited, b in enumerate(order):
        tiles = members[keys[b]]
        deficit = {s: target[s] - count[s] for s in (test, val)
                   if target[s] - count[s] > 0}
        dest = max(deficit, key=deficit.get) if deficit else train
        if visited == len(order) - 1 and count[train] == 0:
            dest = train  # never leave train empty
        out[dest] += tiles
        count[dest] += len(tiles)
    return {s: sorted(v) for s, v in out.items()}
