"""Validation of an H2Crop data root: split lists and every listed tile.

Each problem is reported as one :class:`Problem` (``path: key: message``).
The layout checks come from :mod:`h2crop.datasets.h5io`, shared with the
dataset's loader.
"""
import multiprocessing
import os
import os.path as osp
from typing import (
    Dict,
    Iterable,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import h5py
import numpy as np

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    H5_DIR,
    H5_SUFFIX,
    LEVELS,
    NUM_CROP_CLASSES,
    NUM_LEVELS,
    PRIOR,
    S2,
    SPLITS,
    TAXONOMY_FILE,
)
from h2crop.taxonomy import Taxonomy, load_taxonomy

from .h5io import (
    CONTENTS,
    LABEL,
    PARCEL_ID,
    H2CropDataError,
    check_dataset_layout,
    find_key,
    ids_beyond,
    names_of,
    open_tile,
)

#: Placeholder key for problems that concern a whole file.
WHOLE_FILE = '-'
#: ``Problem.detail`` tag of label / prior ids beyond the taxonomy.
IDS_BEYOND = 'ids_beyond'


class Problem(NamedTuple):
    """One defect: the file, the H5 key (or id / ``-``) and what is wrong.

    ``detail`` carries what a summary needs (not printed): for ids beyond
    the taxonomy ``(IDS_BEYOND, level, largest id, classes)``.
    """
    path: str
    key: str
    message: str
    detail: tuple = ()

    def __str__(self) -> str:
        return f'{self.path}: {self.key}: {self.message}'


def resolve_taxonomy(data_root: str,
                     taxonomy: Union[None, str, Taxonomy] = None) -> Taxonomy:
    """The taxonomy to check against.

    ``taxonomy`` when given; else ``<data_root>/cascade_labels.csv`` when it
    exists (synthetic datasets carry theirs); else the numeric fallback,
    which only allows range checks (``has_hierarchy`` is False).
    """
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    if taxonomy is None:
        local = osp.join(data_root, TAXONOMY_FILE)
        return load_taxonomy(local if osp.isfile(local) else None)
    return load_taxonomy(taxonomy)


def _infer_size(h5: h5py.File) -> Optional[Tuple[int, int]]:
    """Tile (H, W) from the label, else from S2; None when neither fits."""
    for content, ndim in ((LABEL, 3), (S2, 4)):
        key = find_key(h5, content)
        if key is not None and isinstance(h5[key], h5py.Dataset) and \
                h5[key].ndim == ndim:
            return tuple(int(s) for s in h5[key].shape[-2:])
    return None


def _check_stack(path: str, key: str, stack: np.ndarray,
                 taxonomy: Taxonomy) -> List[Problem]:
    """Id ranges per level and cross-level consistency of a (4, H, W) stack."""
    problems = [Problem(path, key, f'{lv} ids up to {top} (expected '
                        f'0..{n - 1})', (IDS_BEYOND, lv, top, n))
                for lv, top, n in ids_beyond(stack, LEVELS,
                                             taxonomy.num_classes)]
    if problems or not taxonomy.has_hierarchy:
        return problems
    bad = ~taxonomy.consistency_mask(stack, LEVELS)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        path_ids = tuple(int(v) for v in stack[:, row, col])
        problems.append(Problem(
            path, key,
            f'{int(bad.sum())} pixel(s) whose levels are not a taxonomy path, '
            f'e.g. ids {path_ids} at (row {row}, col {col}) (expected every '
            f'level-k+1 id to have the level-k id as parent in '
            f'{taxonomy.source})'))
    return problems


def check_tile(path: str,
               taxonomy: Taxonomy,
               tile_size: Optional[int] = None,
               read_images: bool = True,
               contents: Sequence[str] = CONTENTS) -> List[Problem]:
    """All problems of one tile.

    Args:
        path: Tile file.
        taxonomy: Class counts and hierarchy to check ids against.
        tile_size: Expected side; None takes it from the label (or S2).
        read_images: Also read S2 and EnMAP pixels (finds corrupt data
            blocks; labels and priors are always read).
        contents: Contents to check (a run without EnMAP or priors does
            not need them); the label is always checked.
    """
    try:
        h5 = open_tile(path)
    except H2CropDataError as err:
        msg = str(err)
        if msg.startswith(path + ': '):
            msg = msg[len(path) + 2:]
        return [Problem(path, WHOLE_FILE, msg)]
    problems: List[Problem] = []
    with h5:
        hw = (tile_size, tile_size) if tile_size else _infer_size(h5)
        if hw is None:
            problems.append(Problem(
                path, names_of(LABEL),
                f'cannot tell the tile size: expected a {NUM_LEVELS} x H x W '
                'label or a 12 x 10 x H x W S2 array'))
            hw = (0, 0)
        if hw[0] % 3 or hw[1] % 3:
            problems.append(Problem(path, names_of(LABEL),
                                    f'tile size {hw} not a multiple of 3'))
        for content in CONTENTS:
            if content not in contents and content != LABEL:
                continue
            key, msgs = check_dataset_layout(h5, content, *hw)
            problems += [Problem(path, key or names_of(content), m)
                         for m in msgs]
            if key is None or msgs or hw == (0, 0):
                continue
            if content in (S2, ENMAP) and not read_images:
                continue
            try:
                data = h5[key][()]
            except (OSError, RuntimeError) as err:
                problems.append(Problem(
                    path, key, f'unreadable (truncated or corrupt?): {err}'))
                continue
            if content in (LABEL, PRIOR):
                problems += _check_stack(path, key, data, taxonomy)
        if PARCEL_ID in h5 and hw != (0, 0):  # optional (converted tiles)
            key, msgs = check_dataset_layout(h5, PARCEL_ID, *hw)
            problems += [Problem(path, key, m) for m in msgs]
    return problems


def _check_tile_star(args: tuple) -> List[Problem]:
    return check_tile(*args)


def summarise_ids_beyond(problems: List[Problem],
                         taxonomy: Taxonomy) -> List[Problem]:
    """Report ids beyond a taxonomy CSV once, on the CSV.

    When label / prior ids exceed the class counts of a taxonomy file but
    stay within the paper's counts (:data:`~h2crop.constants.
    NUM_CROP_CLASSES`), the file is the likelier culprit (rows missing at
    its end, or another dataset's taxonomy) than every tile that uses the
    ids: the per-tile problems of that level become one problem naming
    the CSV, its row count, the largest id found, how many tiles use such
    ids and one of them. Larger ids (e.g. 200 at level 1) stay problems of
    their tiles.

    Args:
        problems: Problems of :func:`check_tile` (any order).
        taxonomy: The taxonomy the ids were checked against.

    Returns:
        The problems, the summaries first (unchanged for the numeric
        fallback taxonomy, which has no file).
    """
    if not taxonomy.has_hierarchy:
        return problems
    beyond: Dict[str, List[Problem]] = {}
    rest = []
    for problem in problems:
        if problem.detail[:1] == (IDS_BEYOND, ):
            beyond.setdefault(problem.detail[1], []).append(problem)
        else:
            rest.append(problem)
    rows = taxonomy.num_crop_classes[-1]  # one row per finest class
    summary = []
    for level, paper in zip(LEVELS, NUM_CROP_CLASSES):
        found = beyond.get(level, [])
        top = max((p.detail[2] for p in found), default=0)
        if not found or top > paper:
            rest += found
            continue
        first = max(found, key=lambda p: p.detail[2])
        tiles = len({p.path for p in found})
        classes = found[0].detail[3] - 1
        summary.append(Problem(
            taxonomy.source, WHOLE_FILE,
            f'the taxonomy ({rows} rows) has {classes} {level} classes, but '
            f'{tiles} tile(s) use {level} ids up to {top} (e.g. '
            f'{first.path} {first.key}): rows are missing from the '
            'taxonomy, or it is not the taxonomy of this dataset'
            + (' (or that tile is wrong)' if tiles == 1 else '')))
    return summary + rest


def check_split_lists(
        data_root: str,
        splits: Sequence[str] = SPLITS,
        lists_dir: Optional[str] = None
) -> Tuple[List[Problem], Dict[str, List[str]]]:
    """Problems of the split lists and the ids they list.

    Reports missing lists, ids listed twice in a list or in two lists, and
    ids whose file is missing.

    Returns:
        The problems and, per split, the unique ids listed.
    """
    lists_dir = lists_dir or default_lists_dir(data_root)
    problems: List[Problem] = []
    listed: Dict[str, List[str]] = {}
    where: Dict[str, Tuple[str, int]] = {}
    h5_dir = osp.join(data_root, H5_DIR)
    for split in splits:
        list_path = osp.join(lists_dir, f'{split}.txt')
        listed[split] = []
        if not osp.isfile(list_path):
            problems.append(Problem(list_path, WHOLE_FILE,
                                    'split list not found'))
            continue
        with open(list_path, encoding='utf-8') as f:
            lines = [line.strip() for line in f]
        if not any(lines):
            problems.append(Problem(
                list_path, WHOLE_FILE,
                'split list is empty (expected one sample id per line)'))
            continue
        for line_no, sid in enumerate(lines, start=1):
            if not sid:
                continue
            if sid in where:
                other, other_line = where[sid]
                problems.append(Problem(
                    list_path, sid,
                    f'duplicate id (line {line_no}; also {other}.txt line '
                    f'{other_line}); expected each id once over all splits'))
                continue
            where[sid] = (split, line_no)
            listed[split].append(sid)
            h5_path = osp.join(h5_dir, sid + H5_SUFFIX)
            if not osp.isfile(h5_path):
                problems.append(Problem(
                    h5_path, WHOLE_FILE,
                    f'file missing (listed in {split}.txt line {line_no})'))
    return problems, listed


def default_lists_dir(data_root: str) -> str:
    """``<data_root>/data_lists`` if present, else ``./data_lists``."""
    local = osp.join(data_root, DATA_LISTS_DIR)
    return local if osp.isdir(local) else osp.abspath(DATA_LISTS_DIR)


def check_dataset(data_root: str,
                  splits: Sequence[str] = SPLITS,
                  taxonomy: Union[None, str, Taxonomy] = None,
                  lists_dir: Optional[str] = None,
                  tile_size: Optional[int] = None,
                  read_images: bool = True,
                  report_unlisted: Optional[bool] = None,
                  workers: int = 1,
                  contents: Sequence[str] = CONTENTS,
                  counts: Optional[Dict[str, int]] = None) -> List[Problem]:
    """Validate the split lists and every listed tile of a data root.

    Args:
        data_root: Folder with ``h5_data/`` (and usually ``data_lists/``).
        splits: Split names; lists are ``<lists_dir>/<split>.txt``.
        taxonomy: See :func:`resolve_taxonomy`.
        lists_dir: Folder of the split lists (see :func:`default_lists_dir`).
        tile_size: Expected tile side; None infers it per tile.
        read_images: Also read S2/EnMAP pixels.
        report_unlisted: Report tiles in ``h5_data`` listed in no split;
            default: only when all of train/val/test are checked.
        workers: Processes checking tiles in parallel.
        contents: Contents checked in each tile (see :func:`check_tile`).
        counts: If given, receives ``tiles`` (tiles checked) and, per
            split, the number of ids listed.

    Returns:
        Problems, split-list ones first, then per tile in listing order;
        empty when the dataset is clean.
    """
    tax = resolve_taxonomy(data_root, taxonomy)
    problems, listed = check_split_lists(data_root, splits, lists_dir)
    h5_dir = osp.join(data_root, H5_DIR)
    if counts is not None:
        counts.update({split: len(listed[split]) for split in splits})
        counts['tiles'] = 0
    if not osp.isdir(h5_dir):
        return problems + [Problem(h5_dir, WHOLE_FILE, 'folder not found')]
    ids = [sid for split in splits for sid in listed[split]]
    paths = [osp.join(h5_dir, sid + H5_SUFFIX) for sid in ids]
    paths = [p for p in paths if osp.isfile(p)]
    if counts is not None:
        counts['tiles'] = len(paths)
    if report_unlisted is None:
        report_unlisted = set(SPLITS) <= set(splits)
    if report_unlisted:
        known = set(ids)
        for name in sorted(os.listdir(h5_dir)):
            if name.endswith(H5_SUFFIX) and \
                    name[:-len(H5_SUFFIX)] not in known:
                problems.append(Problem(osp.join(h5_dir, name), WHOLE_FILE,
                                        'tile listed in no split'))
    jobs = [(p, tax, tile_size, read_images, tuple(contents))
            for p in paths]
    results: Iterable[List[Problem]]
    if workers > 1 and len(jobs) > 1:
        with multiprocessing.get_context('fork').Pool(workers) as pool:
            results = pool.map(_check_tile_star, jobs, chunksize=4)
    else:
        results = map(_check_tile_star, jobs)
    tiles: List[Problem] = []
    for tile_problems in results:
        tiles += tile_problems
    return problems + summarise_ids_beyond(tiles, tax)
