"""One validator per experiment concept: taxonomy levels and modalities.

Every component that takes ``levels`` or ``modalities`` (dataset, data
preprocessor, segmentor, heads, metric, taxonomy, config resolution) calls
these functions, so the same bad input is refused everywhere with the same
message.
"""
from typing import Iterable, Tuple

from h2crop.constants import LEVELS, MODALITIES, S2


def check_levels(levels: Iterable[str]) -> Tuple[str, ...]:
    """Validate a selection of taxonomy levels.

    Levels must be a non-empty sequence of distinct names of
    :data:`~h2crop.constants.LEVELS`, ordered coarse to fine (any subset,
    e.g. ``('level2', 'level4')``).

    Args:
        levels: Level names, e.g. ``('level1', 'level2')``.

    Returns:
        The levels as a tuple.

    Raises:
        ValueError: Naming the first rule the input breaks.
    """
    if isinstance(levels, str):
        raise ValueError(f'levels {levels!r}: expected a sequence of level '
                         f'names from {LEVELS}, got a single string')
    levels = tuple(levels)
    if not levels:
        raise ValueError(f'levels (): expected at least one of {LEVELS}')
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise ValueError(f'levels {levels}: unknown {unknown}; expected '
                         f'names from {LEVELS}')
    if len(set(levels)) != len(levels):
        raise ValueError(f'levels {levels}: a level is repeated')
    if list(levels) != sorted(levels, key=LEVELS.index):
        raise ValueError(f'levels {levels}: expected coarse to fine order '
                         f'{tuple(sorted(levels, key=LEVELS.index))}')
    return levels


def check_modalities(modalities: Iterable[str]) -> Tuple[str, ...]:
    """Validate a selection of input modalities.

    Modalities must be distinct keys of :data:`~h2crop.constants.MODALITIES`
    and include S2 (the model's backbone input). Order does not matter.

    Args:
        modalities: Modality keys, e.g. ``('s2', 'enmap')``.

    Returns:
        The modalities as a tuple.

    Raises:
        ValueError: Naming the first rule the input breaks.
    """
    if isinstance(modalities, str):
        raise ValueError(f'modalities {modalities!r}: expected a sequence of '
                         f'keys from {MODALITIES}, got a single string')
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ValueError(f'modalities {modalities}: unknown {unknown}; '
                         f'expected keys from {MODALITIES}')
    if len(set(modalities)) != len(modalities):
        raise ValueError(f'modalities {modalities}: a modality is repeated')
    if S2 not in modalities:
        raise ValueError(f'modalities {modalities}: {S2!r} is required (the '
                         'S2 encoder is the backbone)')
    return modalities
