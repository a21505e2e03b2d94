"""The H2Crop dataset: tiles listed in a split file, read per sample."""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.logging import MMLogger

from h2crop.constants import (
    ENMAP_SCALE,
    H5_DIR,
    H5_SUFFIX,
    LEVELS,
    MODALITIES,
    NUM_MONTHS,
    level_index,
)
from h2crop.registry import DATASETS, TRANSFORMS
from h2crop.taxonomy import Taxonomy, load_taxonomy
from h2crop.validators import check_levels, check_modalities

from . import transforms as _transforms  # noqa: F401 (registers them)
from .h5io import H2CropDataError


def read_split_list(path: str) -> List[str]:
    """Sample ids of a split list (one per line; blank lines ignored).

    Raises:
        H2CropDataError: If the file is missing or lists an id twice
            (naming the lines).
    """
    if not osp.isfile(path):
        raise H2CropDataError(f'{path}: split list not found')
    ids: List[str] = []
    seen: Dict[str, int] = {}
    with open(path, encoding='utf-8') as f:
        for line_no, line in enumerate(f, start=1):
            sid = line.strip()
            if not sid:
                continue
            if sid in seen:
                raise H2CropDataError(
                    f'{path}:{line_no}: id {sid!r} listed twice (first at '
                    f'line {seen[sid]}); expected unique ids')
            seen[sid] = line_no
            ids.append(sid)
    return ids


def resolve_ann_file(ann_file: str, data_root: str) -> str:
    """Locate a split list.

    An absolute path is used as is. A relative one is looked up first under
    ``data_root`` and then relative to the current working directory (so
    ``data_lists/train.txt`` finds a generated dataset's own lists, and
    otherwise the repository's ``data_lists/``).

    Raises:
        H2CropDataError: Listing the places tried, if none exists.
    """
    if osp.isabs(ann_file):
        candidates = [ann_file]
    else:
        candidates = [osp.join(data_root, ann_file)] if data_root else []
        candidates.append(osp.abspath(ann_file))
    for path in candidates:
        if osp.isfile(path):
            return osp.abspath(path)
    raise H2CropDataError(f'split list {ann_file!r} not found; tried '
                          f'{candidates}')


@DATASETS.register_module()
class H2CropDataset(BaseDataset):
    """H2Crop tiles ``<data_root>/h5_data/<sample_id>.h5`` of one split.

    Each item is the output of ``pipeline`` applied to a dict with
    ``sample_id``, ``h5_path`` and the reading options (``modalities``,
    ``end_month``, ``levels``, ``num_classes``); the standard pipeline is
    ``LoadH2CropH5`` [-> ``H2CropRandomFlipRotate``] -> ``PackH2CropInputs``.

    Args:
        data_root: Folder holding ``h5_data/``.
        ann_file: Split list (one id per line). A relative path is looked up
            under ``data_root`` first, then relative to the working directory.
        modalities: Inputs to load, any of ``('s2', 'enmap', 'prior')``;
            ``'s2'`` is required.
        end_month: Months from January given to the model (1..12).
        levels: Taxonomy levels of labels and priors, any non-empty subset
            of :data:`~h2crop.constants.LEVELS` without repeats; output rows
            follow this order.
        taxonomy: ``cascade_labels.csv`` path or a Taxonomy; None uses the
            paper's class counts (only counts matter to the dataset).
        pipeline: Transforms (configs, built from the ``h2crop`` registry
            so no default scope is needed, or callables).
        test_mode: mmengine's test mode (no refetching).
        lazy_init: Defer reading the split list.
        check_files: Check at load time that every listed tile exists.
        skip_bad_tiles: Training only: a tile that cannot be read (truncated,
            corrupt, unexpected content) is logged and replaced by another
            random tile instead of stopping the run; the names travel in
            the substitute's ``skipped_tiles`` metainfo and the runner
            counts them in its final summary. Off by default: a bad tile
            stops the run with its name.
        require_label: False accepts tiles without ``label`` (inference on
            new areas; only in ``test_mode``); their samples carry no
            ``gt_sem_seg``.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``indices``, ``serialize_data``, ``max_refetch``, ``metainfo``).
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = '',
                 modalities: Sequence[str] = MODALITIES,
                 end_month: int = NUM_MONTHS,
                 levels: Sequence[str] = LEVELS,
                 taxonomy: Union[None, str, Taxonomy] = None,
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 test_mode: bool = False,
                 lazy_init: bool = False,
                 check_files: bool = True,
                 skip_bad_tiles: bool = False,
                 require_label: bool = True,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        modalities = check_modalities(modalities)
        if not 1 <= int(end_month) <= NUM_MONTHS:
            raise ValueError(f'end_month {end_month} outside 1..{NUM_MONTHS}')
        levels = check_levels(levels)
        if not ann_file:
            raise ValueError('ann_file (a split list) is required')
        if skip_bad_tiles and test_mode:
            raise ValueError(
                'skip_bad_tiles is for training datasets only: skipping a '
                'tile in validation or testing would change the scores; fix '
                'or remove the tile (tools/misc/check_dataset.py)')
        self.skip_bad_tiles = bool(skip_bad_tiles)
        self.modalities = modalities
        self.end_month = int(end_month)
        self.levels = levels
        self.check_files = check_files
        if not require_label and not test_mode:
            raise ValueError('require_label=False (label-free tiles) needs '
                             'test_mode=True; training needs labels')
        self.require_label = bool(require_label)
        self.taxonomy = taxonomy if isinstance(taxonomy, Taxonomy) else \
            load_taxonomy(taxonomy)
        self.num_classes = tuple(self.taxonomy.num_classes[level_index(lv)]
                                 for lv in levels)
        meta = dict(levels=levels,
                    modalities=modalities,
                    end_month=self.end_month,
                    num_classes=self.num_classes,
                    classes={lv: self.taxonomy.level_names(lv)
                             for lv in levels},
                    enmap_scale=ENMAP_SCALE)
        meta.update(metainfo or {})
        super().__init__(ann_file=resolve_ann_file(ann_file, data_root),
                         metainfo=meta,
                         data_root=data_root,
                         pipeline=[
                             TRANSFORMS.build(t) if isinstance(t, dict) else t
                             for t in pipeline
                         ],
                         test_mode=test_mode,
                         lazy_init=lazy_init,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        """One dict per listed id: ``sample_id``, ``h5_path`` and options.

        Raises:
            H2CropDataError: For a missing or duplicated id, or (with
                ``check_files``) listed tiles that do not exist.
        """
        h5_dir = osp.join(self.data_root, H5_DIR)
        data_list = []
        for sid in read_split_list(self.ann_file):
            data_list.append(
                dict(sample_id=sid,
                     h5_path=osp.join(h5_dir, sid + H5_SUFFIX),
                     modalities=self.modalities,
                     end_month=self.end_month,
                     levels=self.levels,
                     num_classes=self.num_classes,
                     require_label=self.require_label))
        if self.check_files:
            existing = set(os.listdir(h5_dir)) if osp.isdir(h5_dir) else set()
            missing = [d['sample_id'] for d in data_list
                       if d['sample_id'] + H5_SUFFIX not in existing]
            if missing:
                raise H2CropDataError(
                    f'{self.ann_file}: {len(missing)} listed id(s) have no '
                    f'file in {h5_dir}, e.g. {missing[:5]}')
        return data_list

    def __getitem__(self, idx: int) -> dict:
        """The sample of ``idx``; with ``skip_bad_tiles``, another on error.

        Raises:
            H2CropDataError: Naming the tile, when it cannot be read (or,
                with ``skip_bad_tiles``, when ``max_refetch + 1`` tiles in a
                row cannot).
        """
        if not self.skip_bad_tiles:
            return super().__getitem__(idx)
        if not self._fully_initialized:
            self.full_init()
        skipped: List[str] = []
        for _ in range(self.max_refetch + 1):
            try:
                data = self.prepare_data(idx)
            except H2CropDataError as err:
                sid = self.get_data_info(idx)['sample_id']
                skipped.append(sid)
                MMLogger.get_current_instance().warning(
                    f'skip_bad_tiles: skipping tile {sid!r}: {err}')
                idx = self._rand_another()
                continue
            if data is None:
                idx = self._rand_another()
                continue
            if skipped:
                data['data_samples'].set_metainfo(
                    dict(skipped_tiles=tuple(skipped)))
            return data
        raise H2CropDataError(
            f'skip_bad_tiles: {len(skipped)} tiles in a row could not be '
            f'read (e.g. {skipped[:5]}); check the data with '
            'tools/misc/check_dataset.py')
