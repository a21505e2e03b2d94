"""Pre-flight data checks run before the first iteration of a run.

They reuse the dataset checker's quick checks (:func:`check_dataset` without
reading S2 / EnMAP pixels) on every split the run uses -- missing or empty
split lists, ids without a file, ids listed in two splits, label and prior
ids beyond the taxonomy's class counts, cross-level consistency -- and read
the first tile of each split end to end. A problem stops the run before any
training with the checker's messages (file, key, expectation).
"""
import os.path as osp
import time
from typing import Dict, List, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import MMLogger

from h2crop.constants import H5_DIR, H5_SUFFIX, S2
from h2crop.datasets.checker import (
    IDS_BEYOND,
    WHOLE_FILE,
    Problem,
    check_dataset,
    check_split_lists,
    check_tile,
)
from h2crop.datasets.h2crop_dataset import read_split_list
from h2crop.datasets.h5io import LABEL, H2CropDataError
from h2crop.taxonomy import TaxonomyError, load_taxonomy

from .experiment import experiment_choices, splits_in_use

#: Most problems quoted in the error message (all are logged).
MAX_QUOTED = 20


class PreflightError(RuntimeError):
    """The data a run would use has problems (listed in the message)."""


def lists_dir_of(data_root: str, data_lists: str) -> str:
    """The split-list folder as the datasets find it.

    An absolute ``data_lists`` is used as is; a relative one under
    ``data_root`` when it exists there, else relative to the working
    directory (like a dataset's ``ann_file``).
    """
    if osp.isabs(data_lists):
        return data_lists
    local = osp.join(data_root, data_lists)
    return local if osp.isdir(local) else osp.abspath(data_lists)


def preflight_problems(cfg: Config,
                       splits: Sequence[str] = (),
                       workers: int = 1) -> Tuple[List[Problem],
                                                  Dict[str, int]]:
    """Problems of the data a resolved config would use.

    Args:
        cfg: A config resolved by
            :func:`~h2crop.engine.experiment.resolve_experiment`.
        splits: Splits to check; default: every split with a dataloader.
        workers: Processes checking tiles.

    Returns:
        The problems (empty when the data is fit for the run) and counts:
        ``tiles`` checked and ids listed per split (no tile is checked
        when the taxonomy cannot be loaded; the split lists still are).
    """
    choices = experiment_choices(cfg)
    splits = list(splits) or splits_in_use(cfg)
    data_root = choices['data_root']
    lists_dir = lists_dir_of(data_root, choices['data_lists'])
    try:
        taxonomy = load_taxonomy(choices['taxonomy'])
    except (TaxonomyError, OSError) as err:
        where = choices['taxonomy'] or 'taxonomy'
        problems, listed = check_split_lists(data_root, splits, lists_dir)
        counts = {split: len(ids) for split, ids in listed.items()}
        counts['tiles'] = 0
        return [Problem(where, WHOLE_FILE,
                        f'cannot load the taxonomy ({err}); set taxonomy= '
                        'to the dataset\'s cascade_labels.csv')] + problems, \
            counts
    contents = (S2, LABEL) + tuple(m for m in choices['modalities']
                                   if m != S2)
    counts: Dict[str, int] = {}
    problems = check_dataset(
        data_root, splits, taxonomy, lists_dir=lists_dir,
        tile_size=choices['tile_size'], read_images=False,
        report_unlisted=False, workers=workers, contents=contents,
        counts=counts)
    seen = set(problems)
    for split in splits:
        try:
            ids = read_split_list(osp.join(lists_dir, f'{split}.txt'))
        except H2CropDataError:
            continue  # reported by the list checks
        path = osp.join(data_root, H5_DIR, ids[0] + H5_SUFFIX) if ids \
            else None
        if path is None or not osp.isfile(path):
            continue
        for problem in check_tile(path, taxonomy, choices['tile_size'],
                                  read_images=True, contents=contents):
            # label / prior ids: the quick checks of every tile have them
            # (summarised on the taxonomy file where it is short)
            if problem not in seen and problem.detail[:1] != (IDS_BEYOND, ):
                seen.add(problem)
                problems.append(problem)
    return problems, counts


def run_preflight(cfg: Config, workers: int = 1) -> None:
    """Check the data of a resolved config; raise on any problem.

    Logs how many tiles were checked and every problem.

    Raises:
        PreflightError: Quoting the problems and how to skip the check.
    """
    logger = MMLogger.get_current_instance()
    start = time.time()
    problems, counts = preflight_problems(cfg, workers=workers)
    listed = ', '.join(f'{s} {n}' for s, n in counts.items() if s != 'tiles')
    logger.info(f'pre-flight data check: {counts.get("tiles", 0)} tile(s) '
                f'checked (ids listed: {listed or "none"}) in '
                f'{time.time() - start:.1f} s, {len(problems)} problem(s)')
    if not problems:
        return
    for problem in problems:
        logger.error(str(problem))
    quoted = '\n'.join(str(p) for p in problems[:MAX_QUOTED])
    more = len(problems) - MAX_QUOTED
    if more > 0:
        quoted += f'\n... and {more} more (see the log)'
    raise PreflightError(
        f'the data of this run has {len(problems)} problem(s):\n{quoted}\n'
        'Fix them (tools/misc/check_dataset.py gives the full report) or '
        'skip this check with --skip-preflight.')
