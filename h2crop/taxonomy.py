"""The four-level crop taxonomy of H2Crop.

The taxonomy comes as a ``cascade_labels.csv`` file with one row per finest
(level-4) class::

    HCAT3_code,level1_id,level1_name,level2_id,level2_name,...,level4_name

Ids are 1-based at every level; id 0 (:data:`~h2crop.constants.BACKGROUND_ID`)
is background / non-crop and is the parent of itself. Level-k ids must be
contiguous and every level-(k+1) id must have exactly one level-k parent (a
strict tree).
"""
import csv
import hashlib
import json
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from .constants import LEVELS, NUM_CROP_CLASSES, NUM_LEVELS
from .validators import check_levels

#: A NumPy array or a torch tensor.
ArrayLike = Union[np.ndarray, Tensor]

BACKGROUND_NAME = 'background'
#: Column of the HCAT3 code of a level-4 class.
CODE_COLUMN = 'HCAT3_code'
#: Columns of the taxonomy table (``cascade_labels.csv``), in file order.
TABLE_COLUMNS: Tuple[str, ...] = (CODE_COLUMN,) + tuple(
    f'{lv}_{c}' for lv in LEVELS for c in ('id', 'name'))
#: :meth:`Taxonomy.digest` of the numeric fallback (no table).
DEFAULT_DIGEST = 'paper-counts'
#: Key of an embedded table in a taxonomy spec (see :func:`load_taxonomy`).
EMBEDDED_ROWS = 'rows'


class TaxonomyError(ValueError):
    """Raised when a taxonomy file is malformed."""


class Taxonomy:
    """Class names and parent maps of the four taxonomy levels.

    Args:
        names: Per level, the names of classes ``0..N_k`` (index 0 is
            background).
        parents: Per level ``k`` in ``1..3`` (0-based index ``k``), an int64
            array of length ``N_k + 1`` that maps a level-k id to its parent
            id at level ``k - 1``; ``parents[0]`` is ``None``.
        codes: HCAT3 code of every level-4 class (index 0 is ``''``).
        source: Where the taxonomy came from (a path or ``'default'``).
    """

    def __init__(self,
                 names: Sequence[Sequence[str]],
                 parents: Sequence[Optional[np.ndarray]],
                 codes: Optional[Sequence[str]] = None,
                 source: str = 'default') -> None:
        if len(names) != NUM_LEVELS or len(parents) != NUM_LEVELS:
            raise TaxonomyError(f'{source}: expected {NUM_LEVELS} levels')
        self.names: Tuple[Tuple[str, ...], ...] = tuple(
            tuple(level_names) for level_names in names)
        self.parents: Tuple[Optional[np.ndarray], ...] = tuple(
            None if p is None else np.asarray(p, dtype=np.int64)
            for p in parents)
        self.codes = tuple(codes) if codes is not None else None
        self.source = source
        self._parent_tensors: Dict[Tuple[int, str], Tensor] = {}
        self._code_paths: Optional[Dict[str, Tuple[int, ...]]] = None

    # ------------------------------------------------------------ properties
    @property
    def num_crop_classes(self) -> Tuple[int, ...]:
        """Crop classes per level, background excluded.

        E.g. ``(6, 36, 82, 101)``.
        """
        return tuple(len(n) - 1 for n in self.names)

    @property
    def num_classes(self) -> Tuple[int, ...]:
        """Classes per level including background (head output sizes)."""
        return tuple(len(n) for n in self.names)

    def level_names(self, level: Union[int, str]) -> Tuple[str, ...]:
        """Class names of a level.

        Args:
            level: Level name (``'level2'``) or 0-based index.

        Returns:
            The level's class names, background first.
        """
        return self.names[self._index(level)]

    def parent_map(self, level: Union[int, str]) -> np.ndarray:
        """Map from ids of ``level`` to ids of the level above it.

        Raises:
            ValueError: For level 1, which has no parent level.
        """
        idx = self._index(level)
        if idx == 0:
            raise ValueError('level1 has no parent level')
        return self.parents[idx]

    def ancestor_map(self, level: Union[int, str],
                     ancestor: Union[int, str]) -> np.ndarray:
        """Map from ids of ``level`` to ids of a coarser ``ancestor`` level."""
        idx, anc = self._index(level), self._index(ancestor)
        if anc > idx:
            raise ValueError(f'{LEVELS[anc]} is not above {LEVELS[idx]}')
        mapping = np.arange(len(self.names[idx]), dtype=np.int64)
        for k in range(idx, anc, -1):
            mapping = self.parents[k][mapping]
        return mapping

    @staticmethod
    def _index(level: Union[int, str]) -> int:
        if isinstance(level, str):
            if level not in LEVELS:
                raise ValueError(f'unknown level {level!r}; expected {LEVELS}')
            return LEVELS.index(level)
        if not 0 <= int(level) < NUM_LEVELS:
            raise ValueError(f'level index {level} outside 0..{NUM_LEVELS-1}')
        return int(level)

    def path_of_code(self, code: str) -> Optional[Tuple[int, ...]]:
        """Ids at every level (coarse to fine) of the class of an HCAT3 code.

        Args:
            code: An HCAT3 code as in the taxonomy's ``HCAT3_code`` column
                (surrounding blanks ignored).

        Returns:
            A tuple of :data:`~h2crop.constants.NUM_LEVELS` ids, or None when
            no level-4 class has this code.

        Raises:
            TaxonomyError: If the taxonomy carries no HCAT3 codes.
        """
        return self.code_paths().get(str(code).strip())

    def code_paths(self) -> Dict[str, Tuple[int, ...]]:
        """Map from every HCAT3 code to its ids at all levels.

        Raises:
            TaxonomyError: If the taxonomy carries no HCAT3 codes.
        """
        if not self.codes or not any(self.codes):
            raise TaxonomyError(f'{self.source}: the taxonomy has no '
                                'HCAT3_code column / codes')
        if self._code_paths is None:
            fine = NUM_LEVELS - 1
            maps = [self.ancestor_map(fine, k) for k in range(NUM_LEVELS)]
            self._code_paths = {
                code: tuple(int(m[leaf]) for m in maps)
                for leaf, code in enumerate(self.codes) if leaf and code}
        return self._code_paths

    # ------------------------------------------------------------ checks
    def consistency_mask(self, stack: ArrayLike,
                         levels: Sequence[str] = LEVELS) -> ArrayLike:
        """Per pixel, whether consecutive levels of a label stack form a path.

        This is the one home of the hierarchy rule: the dataset checker, the
        metric and the decoders call it. NumPy arrays and torch tensors (on
        any device) are accepted and the result has the input's kind.

        Args:
            stack: Integer ids of shape (L, ...) for the ``levels`` given, in
                coarse-to-fine order (consecutive taxonomy levels).
            levels: The level names of the rows of ``stack``.

        Returns:
            Boolean array / tensor of shape ``stack.shape[1:]``: True where
            every level-(k+1) id maps to the level-k id given, and all ids
            are in range.
        """
        levels = check_levels(levels)
        is_torch = isinstance(stack, torch.Tensor)
        if not is_torch:
            stack = np.asarray(stack)
        idx = [LEVELS.index(lv) for lv in levels]
        if len(idx) != stack.shape[0]:
            raise ValueError(f'stack has {stack.shape[0]} rows for {len(idx)} '
                             'levels')
        if any(b != a + 1 for a, b in zip(idx, idx[1:])):
            raise ValueError(f'levels {levels} are not consecutive')
        if is_torch:
            ok = torch.ones(stack.shape[1:], dtype=torch.bool,
                            device=stack.device)
        else:
            ok = np.ones(stack.shape[1:], dtype=bool)
        for row, k in zip(stack, idx):
            ok &= (row >= 0) & (row < self.num_classes[k])
        for r in range(1, len(idx)):
            fine = stack[r].clip(0, self.num_classes[idx[r]] - 1)
            parents = self.parents[idx[r]]
            if is_torch:
                parents = self._torch_parents(idx[r], stack.device)
            ok &= parents[fine] == stack[r - 1]
        return ok

    def _torch_parents(self, index: int, device: torch.device) -> Tensor:
        """Parent map of level ``index`` as an int64 tensor on ``device``."""
        key = (index, str(device))
        if key not in self._parent_tensors:
            self._parent_tensors[key] = torch.as_tensor(
                self.parents[index], dtype=torch.int64, device=device)
        return self._parent_tensors[key]

    def is_consistent(self, stack: ArrayLike,
                      levels: Sequence[str] = LEVELS) -> bool:
        """Whether every pixel of a label stack is a path of the taxonomy."""
        return bool(self.consistency_mask(stack, levels).all())

    # ------------------------------------------------------------ builders
    @classmethod
    def default(cls) -> 'Taxonomy':
        """Numeric class names with the paper's counts.

        Without a CSV the parent relation is unknown; every class maps to
        background in the parent maps, so :meth:`consistency_mask` is only
        meaningful with a real taxonomy (see :attr:`has_hierarchy`).
        """
        names = [[BACKGROUND_NAME]
                 + [f'{lv}_class{i}' for i in range(1, n + 1)]
                 for lv, n in zip(LEVELS, NUM_CROP_CLASSES)]
        parents = [None] + [np.zeros(n + 1, dtype=np.int64)
                            for n in NUM_CROP_CLASSES[1:]]
        return cls(names, parents, None, source='default')

    @property
    def has_hierarchy(self) -> bool:
        """False for the numeric fallback, whose parent maps are unknown."""
        return self.source != 'default'

    @classmethod
    def from_csv(cls, path: str) -> 'Taxonomy':
        """Load and validate a ``cascade_labels.csv`` file.

        Raises:
            TaxonomyError: With the file name, row and column when ids are not
                integers, not contiguous, a class has two parents or names,
                or the header lacks a level column.
        """
        if not osp.isfile(path):
            raise TaxonomyError(f'{path}: taxonomy file not found')
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
        return cls.from_rows(rows, source=path, header=header)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, object]],
                  source: str = 'table',
                  header: Optional[Sequence[str]] = None) -> 'Taxonomy':
        """Build and validate a taxonomy from its table rows.

        Args:
            rows: One mapping per level-4 class with the columns of
                ``cascade_labels.csv`` (:data:`TABLE_COLUMNS`; values as text
                or integers), e.g. :meth:`to_rows` of another taxonomy.
            source: Where the rows came from, for messages.
            header: Column names; default: the keys of the first row.

        Raises:
            TaxonomyError: As :meth:`from_csv`.
        """
        path = source
        if header is None:
            header = list(rows[0]) if rows else []
        need = [f'{lv}_{c}' for lv in LEVELS for c in ('id', 'name')]
        missing = [c for c in need if c not in header]
        if missing:
            raise TaxonomyError(f'{path}: missing columns {missing}; '
                                f'expected {need} (+ HCAT3_code)')
        extra = [c for c in header if c.startswith('level')
                 and c not in need]
        if extra:
            raise TaxonomyError(f'{path}: unexpected level columns {extra}'
                                f'; exactly {NUM_LEVELS} levels expected')
        if not rows:
            raise TaxonomyError(f'{path}: no rows')

        names: List[Dict[int, str]] = [dict() for _ in LEVELS]
        parents: List[Dict[int, int]] = [dict() for _ in LEVELS]
        codes: Dict[int, str] = {}
        for line, row in enumerate(rows, start=2):
            ids = []
            for k, lv in enumerate(LEVELS):
                raw = row[f'{lv}_id']
                try:
                    cid = int(raw)
                except (TypeError, ValueError):
                    raise TaxonomyError(
                        f'{path}:{line}: {lv}_id {raw!r} is not an integer'
                    ) from None
                if cid < 1:
                    raise TaxonomyError(f'{path}:{line}: {lv}_id {cid} < 1 '
                                        f'(0 is reserved for background)')
                name = str(row[f'{lv}_name'] or '').strip()
                if names[k].setdefault(cid, name) != name:
                    raise TaxonomyError(
                        f'{path}:{line}: {lv} id {cid} named {name!r} here '
                        f'and {names[k][cid]!r} before')
                if k > 0 and parents[k].setdefault(cid, ids[-1]) != ids[-1]:
                    raise TaxonomyError(
                        f'{path}:{line}: {lv} id {cid} has two parents '
                        f'({parents[k][cid]} and {ids[-1]}); not a strict '
                        'tree')
                ids.append(cid)
            if ids[-1] in codes:
                raise TaxonomyError(f'{path}:{line}: {LEVELS[-1]} id '
                                    f'{ids[-1]} listed twice')
            codes[ids[-1]] = str(row.get(CODE_COLUMN) or '').strip()

        name_lists, parent_arrays = [], []
        for k, lv in enumerate(LEVELS):
            n = len(names[k])
            if sorted(names[k]) != list(range(1, n + 1)):
                gaps = sorted(set(range(1, max(names[k]) + 1)) - set(names[k]))
                raise TaxonomyError(f'{path}: {lv} ids are not contiguous '
                                    f'1..{max(names[k])}; missing {gaps}')
            name_lists.append([BACKGROUND_NAME] +
                              [names[k][i] for i in range(1, n + 1)])
            if k == 0:
                parent_arrays.append(None)
            else:
                arr = np.zeros(n + 1, dtype=np.int64)
                for cid, par in parents[k].items():
                    arr[cid] = par
                parent_arrays.append(arr)
        code_list = [''] + [codes[i] for i in range(1, len(codes) + 1)]
        return cls(name_lists, parent_arrays, code_list, source=path)

    def to_rows(self) -> List[Dict[str, object]]:
        """The table: one row per level-4 class, in id order.

        The inverse of :meth:`from_rows`: keys are :data:`TABLE_COLUMNS`,
        ids are integers. The numeric fallback (:meth:`default`) has no
        table.

        Raises:
            TaxonomyError: For the numeric fallback.
        """
        if not self.has_hierarchy:
            raise TaxonomyError('the numeric fallback taxonomy has no table '
                                '(no names, no parents)')
        rows = []
        for fine in range(1, len(self.names[-1])):
            path = [fine]
            for k in range(NUM_LEVELS - 1, 0, -1):
                path.append(int(self.parents[k][path[-1]]))
            path.reverse()  # coarse to fine
            row: Dict[str, object] = {
                CODE_COLUMN: self.codes[fine] if self.codes else ''}
            for k, lv in enumerate(LEVELS):
                row[f'{lv}_id'] = path[k]
                row[f'{lv}_name'] = self.names[k][path[k]]
            rows.append(row)
        return rows

    def digest(self) -> str:
        """A short fingerprint of the classes (names, ids, tree, codes).

        Equal for two taxonomies that decode every id the same way, whatever
        file they came from: the first 12 hex digits of the SHA-256 of the
        table rows as JSON (:data:`DEFAULT_DIGEST` for the numeric fallback).
        """
        if not self.has_hierarchy:
            return DEFAULT_DIGEST
        text = json.dumps(self.to_rows(), sort_keys=True,
                          separators=(',', ':'), ensure_ascii=False)
        return hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]

    def check_paper_counts(self) -> None:
        """Check the class counts against the paper's.

        Raises:
            TaxonomyError: Unless the counts are (6, 36, 82, 101).
        """
        if self.num_crop_classes != NUM_CROP_CLASSES:
            raise TaxonomyError(
                f'{self.source}: class counts {self.num_crop_classes}, '
                f'expected the paper\'s {NUM_CROP_CLASSES}')

    def __repr__(self) -> str:
        return (f'Taxonomy(source={self.source!r}, '
                f'num_crop_classes={self.num_crop_classes})')


def write_taxonomy_csv(taxonomy: Taxonomy, path: str) -> str:
    """Write a taxonomy as ``cascade_labels.csv`` (:data:`TABLE_COLUMNS`).

    Reading the file back gives a taxonomy of the same digest.

    Raises:
        TaxonomyError: For the numeric fallback (it has no table).
    """
    rows = taxonomy.to_rows()
    with open(path, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(TABLE_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


#: What :func:`load_taxonomy` takes: a CSV path, None (the numeric
#: fallback) or an embedded table ``{'rows': [...], 'source': str}``.
TaxonomySpec = Union[None, str, Mapping[str, object]]


def embed_taxonomy(taxonomy: 'Taxonomy') -> Optional[Dict[str, object]]:
    """A taxonomy as a spec that needs no file (None for the fallback).

    The spec holds the table itself (:meth:`Taxonomy.to_rows`), where it
    came from and its digest; :func:`load_taxonomy` rebuilds the same
    taxonomy from it. Checkpoints carry their taxonomy this way.
    """
    if not taxonomy.has_hierarchy:
        return None
    return {EMBEDDED_ROWS: taxonomy.to_rows(), 'source': taxonomy.source,
            'digest': taxonomy.digest()}


def is_embedded(spec: TaxonomySpec) -> bool:
    """Whether a taxonomy spec is an embedded table (not a path / None)."""
    return isinstance(spec, Mapping) and EMBEDDED_ROWS in spec


def load_taxonomy(path: TaxonomySpec = None,
                  require_paper_counts: bool = False) -> Taxonomy:
    """Load a taxonomy CSV, an embedded table, or the numeric fallback.

    Args:
        path: A ``cascade_labels.csv`` file, an embedded table (see
            :func:`embed_taxonomy`), or None.
        require_paper_counts: Also require the paper's class counts.

    Raises:
        TaxonomyError: For a malformed file or table, or an embedded table
            whose digest does not match its rows.
    """
    if path is None:
        tax = Taxonomy.default()
    elif is_embedded(path):
        source = str(path.get('source') or 'embedded table')
        rows = [dict(r) for r in path[EMBEDDED_ROWS]]
        tax = Taxonomy.from_rows(rows, source=source)
        stated = path.get('digest')
        if stated is not None and stated != tax.digest():
            raise TaxonomyError(f'{source}: embedded taxonomy rows give '
                                f'digest {tax.digest()}, not the recorded '
                                f'{stated}')
    elif isinstance(path, Mapping):
        raise TaxonomyError(f'a taxonomy given as a mapping needs the key '
                            f'{EMBEDDED_ROWS!r} (the table rows); got keys '
                            f'{sorted(path)}')
    else:
        tax = Taxonomy.from_csv(path)
    if require_paper_counts:
        tax.check_paper_counts()
    return tax
