"""Low-level reading and validation of H2Crop tiles (one HDF5 file each).

This module is the single home of the tile layout checks; the dataset
(:class:`~h2crop.datasets.transforms.LoadH2CropH5`) and the checker
(:mod:`h2crop.datasets.checker`) both use it.

A tile holds four datasets (either name spelling of
:data:`~h2crop.constants.H5_NAMES` is accepted)::

    S2     (12, 10, H, W)      int16   months x bands x rows x cols
    EnMAP  (218, H/3, W/3)     int16
    label  (4, H, W)           uint8   levels 1..4
    prior  (4, H, W)           uint8   levels 1..4

``H`` and ``W`` are taken from the label (192 for the real data).
"""
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import h5py
import numpy as np

from h2crop.constants import (
    ENMAP,
    ENMAP_BANDS,
    ENMAP_DTYPE,
    ENMAP_SCALE,
    H5_LABEL_NAMES,
    H5_NAMES,
    H5_PARCEL_ID,
    LABEL_DTYPE,
    LEVELS,
    NUM_LEVELS,
    NUM_MONTHS,
    PARCEL_ID_DTYPE,
    PRIOR,
    PRIOR_DTYPE,
    S2,
    S2_BANDS,
    S2_DTYPE,
)

#: Content key of the label stack (the label has one spelling only).
LABEL = H5_LABEL_NAMES[0]
#: Content key of the optional per-pixel parcel id (one spelling).
PARCEL_ID = H5_PARCEL_ID
#: Accepted H5 names per content key (the three modalities, the label and
#: the optional parcel id).
CONTENT_NAMES: Dict[str, Tuple[str, ...]] = {
    **H5_NAMES, LABEL: H5_LABEL_NAMES, PARCEL_ID: (H5_PARCEL_ID, )}
#: Name spellings of :func:`write_tile`: index into each content's names.
SPELLINGS = {'loader': 0, 'readme': 1}
#: Contents in the order the checker reports them.
CONTENTS: Tuple[str, ...] = (S2, ENMAP, LABEL, PRIOR)
#: Expected dtype per content key.
CONTENT_DTYPES: Dict[str, np.dtype] = {
    S2: np.dtype(S2_DTYPE),
    ENMAP: np.dtype(ENMAP_DTYPE),
    LABEL: np.dtype(LABEL_DTYPE),
    PRIOR: np.dtype(PRIOR_DTYPE),
    PARCEL_ID: np.dtype(PARCEL_ID_DTYPE),
}


class H2CropDataError(ValueError):
    """A tile or a split list is missing, corrupt or has unexpected content.

    The message always names the file and, where one is involved, the H5 key.
    """


def names_of(content: str) -> str:
    """Accepted names of ``content`` joined for messages (``S2_data|S2``)."""
    return '|'.join(CONTENT_NAMES[content])


def find_key(h5: h5py.File, content: str) -> Optional[str]:
    """Return the H5 name under which ``content`` is stored, or None.

    Args:
        h5: An open tile.
        content: One of :data:`CONTENTS`.
    """
    for name in CONTENT_NAMES[content]:
        if name in h5:
            return name
    return None


def expected_shape(content: str, height: int, width: int) -> Tuple[int, ...]:
    """On-disk shape of ``content`` in a ``height`` x ``width`` tile."""
    if content == S2:
        return (NUM_MONTHS, S2_BANDS, height, width)
    if content == ENMAP:
        return (ENMAP_BANDS, height // ENMAP_SCALE, width // ENMAP_SCALE)
    if content in (LABEL, PRIOR):
        return (NUM_LEVELS, height, width)
    if content == PARCEL_ID:
        return (height, width)
    raise KeyError(f'unknown content {content!r}; expected one of {CONTENTS}')


def tile_size_of(path: str, h5: h5py.File,
                 size: Optional[int] = None) -> Tuple[int, int]:
    """Tile height and width: ``size`` when given, else the label's last axes.

    Raises:
        H2CropDataError: If neither a size nor a usable label is available, or
            the size is not a multiple of the EnMAP scale.
    """
    if size is not None:
        hw = (int(size), int(size))
    else:
        key = find_key(h5, LABEL)
        if key is None:
            # a label-free tile (inference): the size of the S2 stack
            s2_key = find_key(h5, S2)
            if s2_key is not None and isinstance(h5[s2_key], h5py.Dataset) \
                    and h5[s2_key].ndim == 4:
                key = s2_key
        if key is None or not isinstance(h5[key], h5py.Dataset) or \
                h5[key].ndim not in (3, 4):
            raise H2CropDataError(
                f'{path}: {names_of(LABEL)}: missing or not 3-D, so the tile '
                f'size is unknown (expected a {NUM_LEVELS} x H x W label)')
        hw = tuple(int(s) for s in h5[key].shape[-2:])
    if hw[0] % ENMAP_SCALE or hw[1] % ENMAP_SCALE:
        raise H2CropDataError(
            f'{path}: tile size {hw} is not a multiple of {ENMAP_SCALE} '
            '(EnMAP is on a 1/3 grid)')
    return hw


def check_dataset_layout(h5: h5py.File, content: str, height: int,
                         width: int) -> Tuple[Optional[str], List[str]]:
    """Check presence, shape and dtype of one content of an open tile.

    Returns:
        The H5 name found (None when missing) and a list of problems, each a
        sentence with what was expected.
    """
    key = find_key(h5, content)
    if key is None:
        return None, [f'missing (expected one of {names_of(content)})']
    node = h5[key]
    if not isinstance(node, h5py.Dataset):
        return key, ['is a group, expected a dataset']
    problems = []
    shape = expected_shape(content, height, width)
    if tuple(node.shape) != shape:
        problems.append(f'shape {tuple(node.shape)} (expected {shape})')
    if node.dtype != CONTENT_DTYPES[content]:
        problems.append(
            f'dtype {node.dtype} (expected {CONTENT_DTYPES[content]})')
    return key, problems


def open_tile(path: str) -> h5py.File:
    """Open a tile read-only.

    Raises:
        H2CropDataError: If the file is missing, truncated or not HDF5.
    """
    if not osp.isfile(path):
        raise H2CropDataError(f'{path}: file not found')
    try:
        return h5py.File(path, 'r')
    except OSError as err:
        raise H2CropDataError(
            f'{path}: cannot open as HDF5 (truncated or corrupt file?): '
            f'{err}') from err


def check_id_range(path: str, key: str, stack: np.ndarray,
                   levels: Sequence[str],
                   num_classes: Sequence[int]) -> List[str]:
    """Problems with ids outside ``0..N_k`` per level of a label/prior stack.

    Args:
        path: File name, for messages only.
        key: H5 key, for messages only.
        stack: uint8 array (L, H, W), rows in ``levels`` order.
        levels: Level names of the rows.
        num_classes: Classes per row including background (``N_k + 1``).
    """
    return [f'{lv} ids up to {top} (expected 0..{n - 1})'
            for lv, top, n in ids_beyond(stack, levels, num_classes)]


def ids_beyond(stack: np.ndarray, levels: Sequence[str],
               num_classes: Sequence[int]) -> List[Tuple[str, int, int]]:
    """The levels of a label/prior stack whose ids exceed the class count.

    Args:
        stack: uint8 array (L, H, W), rows in ``levels`` order.
        levels: Level names of the rows.
        num_classes: Classes per row including background (``N_k + 1``).

    Returns:
        ``(level, largest id, classes)`` per level with an id >= classes.
    """
    if stack.shape[0] == 0:
        return []
    # (L, H, W) -> (L,): largest id per level
    top = stack.reshape(stack.shape[0], -1).max(axis=1)
    return [(lv, int(m), int(n)) for lv, m, n in zip(levels, top, num_classes)
            if m >= n]


def read_tile(path: str,
              modalities: Sequence[str],
              end_month: int = NUM_MONTHS,
              level_indices: Sequence[int] = tuple(range(NUM_LEVELS)),
              num_classes: Optional[Sequence[int]] = None,
              tile_size: Optional[int] = None,
              require_label: bool = True,
              parcel_id: bool = False) -> Dict[str, np.ndarray]:
    """Read what a sample needs from a tile, validating it on the way.

    Only S2 months ``[0:end_month]``, only the label (and prior) rows of
    ``level_indices`` and EnMAP only when asked are read, each straight into
    a preallocated contiguous array. The file is closed before returning.

    Args:
        path: Tile file.
        modalities: Subset of ``('s2', 'enmap', 'prior')``; S2 is always read.
        end_month: Number of months from January to read (1..12).
        level_indices: 0-based taxonomy levels of the label/prior rows.
        num_classes: Classes per requested level including background; when
            given, label and prior ids are range-checked.
        tile_size: Expected side length; None takes it from the label (or
            from S2 in a label-free tile).
        require_label: When False (inference), a tile without ``label`` is
            read without it; a label that is present is still validated.
        parcel_id: Also read the optional ``parcel_id`` when the tile has
            one (tiles converted from parcel vectors).

    Returns:
        dict with ``'s2'`` int16 (T, 10, H, W), ``'label'`` uint8 (L, H, W)
        (absent for a label-free tile read with ``require_label=False``)
        and, when requested, ``'enmap'`` int16 (218, H/3, W/3),
        ``'prior'`` uint8 (L, H, W) and (if present) ``'parcel_id'`` uint32
        (H, W).

    Raises:
        H2CropDataError: Naming the file and key, for a missing, truncated or
            corrupt file, a missing key, a wrong shape or dtype, or ids out
            of range.
    """
    if not 1 <= end_month <= NUM_MONTHS:
        raise ValueError(f'end_month {end_month} outside 1..{NUM_MONTHS}')
    levels = [LEVELS[i] for i in level_indices]
    contents = [S2, LABEL] + [m for m in (ENMAP, PRIOR) if m in modalities]
    out: Dict[str, np.ndarray] = {}
    keys: Dict[str, str] = {}  # content -> H5 name found in this tile
    with open_tile(path) as h5:
        try:
            height, width = tile_size_of(path, h5, tile_size)
            if not require_label and find_key(h5, LABEL) is None:
                contents.remove(LABEL)
            if parcel_id and PARCEL_ID in h5:
                contents.append(PARCEL_ID)
            for content in contents:
                key, problems = check_dataset_layout(h5, content, height,
                                                     width)
                if problems:
                    raise H2CropDataError(
                        f'{path}: {key or names_of(content)}: '
                        + '; '.join(problems))
                keys[content] = key
                out[content] = _read(h5[key], content, end_month,
                                     level_indices)
        except H2CropDataError:
            raise
        except (OSError, RuntimeError, KeyError) as err:
            raise H2CropDataError(
                f'{path}: reading failed (truncated or corrupt tile?): '
                f'{err}') from err
    if num_classes is not None:
        for content in (LABEL, PRIOR):
            if content in out:
                problems = check_id_range(path, keys[content],
                                          out[content], levels, num_classes)
                if problems:
                    raise H2CropDataError(f'{path}: {keys[content]}: ' +
                                          '; '.join(problems))
    return out


def _read(ds: h5py.Dataset, content: str, end_month: int,
          level_indices: Sequence[int]) -> np.ndarray:
    """Read a validated dataset (or the needed part) into a new array."""
    try:
        if content == S2:
            arr = np.empty((end_month, ) + ds.shape[1:], dtype=ds.dtype)
            ds.read_direct(arr, np.s_[0:end_month])
        elif content in (ENMAP, PARCEL_ID):
            arr = np.empty(ds.shape, dtype=ds.dtype)
            ds.read_direct(arr)
        else:
            idx = list(level_indices)
            arr = np.empty((len(idx), ) + ds.shape[1:], dtype=ds.dtype)
            first = idx[0] if idx else 0
            if idx == list(range(first, first + len(idx))):
                # consecutive levels: one hyperslab read
                ds.read_direct(arr, np.s_[first:first + len(idx)])
            else:
                for row, lv in enumerate(idx):
                    ds.read_direct(arr, np.s_[lv], np.s_[row])
        return arr
    except (OSError, RuntimeError) as err:
        raise H2CropDataError(
            f'{ds.file.filename}: {ds.name.lstrip("/")}: reading failed '
            f'(truncated or corrupt tile?): {err}') from err


def tile_has_parcel_ids(path: str) -> bool:
    """Whether a tile carries the optional ``parcel_id`` dataset.

    Raises:
        H2CropDataError: If the file is missing or not HDF5.
    """
    with open_tile(path) as h5:
        return PARCEL_ID in h5


def write_tile(path: str,
               arrays: Mapping[str, np.ndarray],
               spelling: str = 'loader',
               attrs: Optional[Mapping[str, Any]] = None) -> None:
    """Write one tile (uncompressed, contiguous) in the dataset's layout.

    Args:
        path: Output ``.h5`` file (replaced if it exists; callers decide
            about overwriting).
        arrays: Arrays keyed by content (:data:`CONTENTS` and optionally
            :data:`PARCEL_ID`), already in the dtypes of
            :data:`CONTENT_DTYPES`.
        spelling: ``'loader'`` (``S2_data``, ``EnMAP_data``, ``priors``) or
            ``'readme'`` (``S2``, ``EnMAP``, ``prior``).
        attrs: File attributes, e.g. the georeference
            (:data:`~h2crop.constants.H5_ATTR_CRS`,
            :data:`~h2crop.constants.H5_ATTR_TRANSFORM`).

    Raises:
        ValueError: For an unknown content, spelling or a wrong dtype.
    """
    if spelling not in SPELLINGS:
        raise ValueError(f'spelling {spelling!r}; expected one of '
                         f'{tuple(SPELLINGS)}')
    which = SPELLINGS[spelling]
    for content, arr in arrays.items():
        if content not in CONTENT_DTYPES:
            raise ValueError(f'{path}: unknown content {content!r}; expected '
                             f'one of {tuple(CONTENT_DTYPES)}')
        if arr.dtype != CONTENT_DTYPES[content]:
            raise ValueError(f'{path}: {content} has dtype {arr.dtype}; '
                             f'expected {CONTENT_DTYPES[content]}')
    with h5py.File(path, 'w') as f:
        for content, arr in arrays.items():
            names = CONTENT_NAMES[content]
            f.create_dataset(names[min(which, len(names) - 1)], data=arr)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
