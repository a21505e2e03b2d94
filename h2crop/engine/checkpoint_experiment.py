"""The experiment a checkpoint was trained in, carried with its weights.

Weights mean nothing without the choices they were trained with: the
taxonomy that names the classes and the tree that links the levels, the band
statistics that scale the inputs, the month window, the inputs and the
levels. Every checkpoint written by training therefore holds, under
``meta[EXPERIMENT_META_KEY]``, the resolved experiment
(:func:`experiment_record`): the taxonomy *table itself* (rows, not a path;
see :func:`h2crop.taxonomy.embed_taxonomy`) with its digest, ``norm_mean`` /
``norm_std``, ``end_month``, ``modalities``, ``levels``, ``tile_size``,
``train_crop_size`` (the model's window when it was trained on crops), the
any-window model's maximum window and inputs, and the h2crop version.

Tools that load a checkpoint (``tools/test.py``, ``tools/infer.py``,
:func:`h2crop.apis.init_model`, the dataset converters with
``--like-checkpoint``) reconcile it with their config
(:func:`reconcile_experiment`) before anything is built: a choice the
config does not state is taken from the checkpoint; a stated choice that
contradicts the checkpoint is refused, naming the key and both values,
unless the user passes ``--allow-experiment-mismatch`` (then it is a
warning and the config wins). Checkpoints without a record (older ones, or
the original implementation's converted weights) keep working with a
one-line notice.
"""
import copy
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.logging import MMLogger

from h2crop.constants import TAXONOMY_FILE
from h2crop.taxonomy import (
    DEFAULT_DIGEST,
    Taxonomy,
    TaxonomyError,
    embed_taxonomy,
    is_embedded,
    load_taxonomy,
)
from h2crop.version import __version__

from .experiment import RESOLVED_KEY, ExperimentConfigError, _plain

#: Key of the experiment record in a checkpoint's ``meta``.
EXPERIMENT_META_KEY = 'h2crop_experiment'
#: Choices a record holds and a config is reconciled on, in message order.
RECORD_CHOICES: Tuple[str, ...] = ('taxonomy', 'norm_mean', 'norm_std',
                                   'end_month', 'modalities', 'levels',
                                   'tile_size', 'train_crop_size')
#: Choices that describe the data, not the model, of an any-window model.
ANY_WINDOW_DATA_CHOICES: Tuple[str, ...] = ('end_month', 'modalities')
#: Modes of :func:`reconcile_experiment`: ``'infer'`` maps new inputs (the
#: config's data root is not read); ``'test'`` reads the config's data, so
#: the taxonomy of its data root counts as stated.
MODES: Tuple[str, ...] = ('infer', 'test')
#: Flag of the tools that lets a stated choice override the checkpoint's.
ALLOW_FLAG = '--allow-experiment-mismatch'
#: Relative tolerance of band statistics comparisons.
STATS_RTOL = 1e-6


class ExperimentMismatchError(ExperimentConfigError):
    """A config's choice contradicts the checkpoint it is used with."""


def experiment_record(cfg: Config) -> Optional[Dict[str, Any]]:
    """The experiment of a resolved config, as stored in checkpoints.

    Args:
        cfg: A config resolved by
            :func:`~h2crop.engine.experiment.resolve_experiment`.

    Returns:
        The record (plain Python values), or None when ``cfg`` is no
        resolved h2crop experiment (e.g. a test's toy runner).

    Raises:
        TaxonomyError: When the experiment's taxonomy cannot be loaded.
    """
    choices = cfg.get(RESOLVED_KEY)
    model = cfg.get('model')
    if not choices or not isinstance(model, Mapping):
        return None
    taxonomy = load_taxonomy(choices['taxonomy'])
    pre = model.get('data_preprocessor') or {}
    any_window = None
    if model.get('any_window') is not None:
        any_window = dict(num_frames=int(model['num_frames']),
                          modalities=list(model['modalities']))
    return dict(
        h2crop_version=__version__,
        taxonomy=embed_taxonomy(taxonomy),
        taxonomy_digest=taxonomy.digest(),
        norm_mean=_stats(pre.get('mean')),
        norm_std=_stats(pre.get('std')),
        end_month=int(choices['end_month']),
        modalities=list(choices['modalities']),
        levels=list(choices['levels']),
        tile_size=int(choices['tile_size']),
        train_crop_size=choices.get('train_crop_size'),
        any_window=any_window)


def _stats(values: Any) -> Optional[Dict[str, List[float]]]:
    if values is None:
        return None
    return {str(k): [float(v) for v in vs] for k, vs in values.items()}


def record_of_meta(meta: Optional[Mapping]) -> Optional[Dict[str, Any]]:
    """The experiment record in a checkpoint's meta, or None."""
    if not isinstance(meta, Mapping):
        return None
    record = meta.get(EXPERIMENT_META_KEY)
    return dict(record) if isinstance(record, Mapping) else None


def record_taxonomy(record: Mapping[str, Any], checkpoint: str) -> Any:
    """The record's taxonomy as a spec, its source naming the checkpoint."""
    spec = record.get('taxonomy')
    if not is_embedded(spec):
        return None
    spec = dict(spec)
    spec['source'] = (f'{checkpoint} (trained with '
                      f'{spec.get("source") or "an embedded table"})')
    return spec


def taxonomy_summary(taxonomy: Taxonomy) -> str:
    """``'101 level-4 classes'`` (the finest level), for messages."""
    return f'{taxonomy.num_crop_classes[-1]} level-4 classes'


def _taxonomy_difference(stated: Taxonomy, trained: Taxonomy) -> str:
    """How two taxonomies differ, in a few words (config vs checkpoint)."""
    a, b = stated.num_crop_classes, trained.num_crop_classes
    if a != b:
        if a[-1] != b[-1]:
            return f'{a[-1]} vs {b[-1]} level-4 classes'
        return f'class counts {a} vs {b}'
    for k, (na, nb) in enumerate(zip(stated.names, trained.names)):
        for cid, (x, y) in enumerate(zip(na, nb)):
            if x != y:
                return (f'same class counts, level{k + 1} id {cid} named '
                        f'{x!r} vs {y!r}')
    return 'same classes and names, another tree or other HCAT3 codes'


def _stats_difference(stated: Any, trained: Any) -> Optional[str]:
    """Where two band-statistics dicts differ (None when they agree)."""
    if stated is None or trained is None:
        return None if stated is trained else (
            f'{"none" if stated is None else "given"} vs '
            f'{"none" if trained is None else "given"}')
    stated, trained = _stats(stated), _stats(trained)
    if set(stated) != set(trained):
        return f'inputs {sorted(stated)} vs {sorted(trained)}'
    for key in sorted(stated):
        x, y = np.asarray(stated[key]), np.asarray(trained[key])
        if x.shape != y.shape:
            return f'{key}: {x.size} vs {y.size} bands'
        close = np.isclose(x, y, rtol=STATS_RTOL, atol=STATS_RTOL)
        if not close.all():
            band = int(np.argmax(np.abs(x - y)))
            return (f'{key} band {band + 1}: {x[band]:.6g} vs '
                    f'{y[band]:.6g}')
    return None


def _stated(cfg: Config, key: str, mode: str) -> Tuple[bool, Any]:
    """Whether ``cfg`` states a choice, and the value it states."""
    if key in cfg:
        return True, cfg[key]
    if key == 'taxonomy' and mode == 'test' and 'data_root' in cfg:
        # the data of a test is labelled in its data root's taxonomy
        local = osp.join(str(cfg.data_root), TAXONOMY_FILE)
        if osp.isfile(local):
            return True, local
    return False, None


def _mismatch(key: str, stated: Any, trained: Any,
              record: Mapping[str, Any]) -> Optional[str]:
    """A phrase naming how a stated choice differs, or None if it agrees."""
    if key == 'taxonomy':
        try:
            ours = load_taxonomy(stated)
        except TaxonomyError as err:
            raise ExperimentConfigError(f'taxonomy: {err}') from None
        digest = ours.digest()
        if digest == record.get('taxonomy_digest', DEFAULT_DIGEST):
            return None
        theirs = load_taxonomy(trained)
        return (f"taxonomy differs from the checkpoint's: "
                f'{_taxonomy_difference(ours, theirs)} (config: '
                f'{ours.source}, digest {digest}; checkpoint: digest '
                f'{theirs.digest()})')
    if key in ('norm_mean', 'norm_std'):
        diff = _stats_difference(stated, trained)
        return None if diff is None else (
            f"{key} differs from the checkpoint's: {diff} (config vs "
            'checkpoint)')
    if _plain(stated) == _plain(trained):
        return None
    return (f"{key}={_plain(stated)!r} differs from the checkpoint's "
            f'{key}={_plain(trained)!r}')


def reconcile_experiment(cfg: Config, record: Optional[Mapping[str, Any]],
                         checkpoint: str, mode: str = 'infer',
                         allow_mismatch: bool = False,
                         logger: Optional[MMLogger] = None) -> Config:
    """Bring a config's choices in line with its checkpoint's experiment.

    Call it on the loaded config (``--cfg-options`` merged) before
    :func:`~h2crop.engine.experiment.resolve_experiment`.

    Args:
        cfg: The loaded config (not yet resolved; not changed).
        record: The checkpoint's record (:func:`record_of_meta`), or None
            for a checkpoint without one.
        checkpoint: The checkpoint's path, for messages.
        mode: One of :data:`MODES`.
        allow_mismatch: Warn about contradicting choices and keep the
            config's instead of refusing them.
        logger: Where notices and warnings go (default: the current
            MMLogger).

    Returns:
        A copy of ``cfg`` whose unstated choices are the checkpoint's
        (the taxonomy as the embedded table).

    Raises:
        ExperimentMismatchError: One line naming every contradicting choice,
            both values and how to resolve it.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    logger = logger or MMLogger.get_current_instance()
    cfg = copy.deepcopy(cfg)
    if record is None:
        logger.warning(
            f'{checkpoint} carries no experiment record (written before '
            f'h2crop recorded it, or converted): the config\'s taxonomy, '
            'band statistics, window, inputs and levels are used unchecked')
        return cfg
    model = cfg.get('model')
    any_window = isinstance(model, Mapping) and \
        model.get('any_window') is not None
    problems: List[str] = []
    taken: List[str] = []
    for key in RECORD_CHOICES:
        trained = record_taxonomy(record, checkpoint) if key == 'taxonomy' \
            else copy.deepcopy(record.get(key))
        # None is a value of train_crop_size (whole tiles) once recorded
        if key != 'taxonomy' and trained is None and not (
                key == 'train_crop_size' and key in record):
            continue
        stated, value = _stated(cfg, key, mode)
        if any_window and key in ANY_WINDOW_DATA_CHOICES:
            if not stated:
                cfg[key] = trained
            continue  # describes the data; the model keeps its maximum
        if not stated:
            cfg[key] = trained
            taken.append(key)
            continue
        problem = _mismatch(key, value, trained, record)
        if problem:
            problems.append(problem)
    if taken:
        logger.info(f'from the checkpoint {checkpoint}: '
                    f'{", ".join(taken)}')
    if not problems:
        return cfg
    advice = ('pass --cfg-options with the checkpoint\'s values, use the '
              'training config (its work dir holds a copy), give the '
              'checkpoint alone (tools/infer.py CKPT), or '
              f'{ALLOW_FLAG} if you mean it')
    if not allow_mismatch:
        raise ExperimentMismatchError(
            f'{checkpoint}: ' + '; '.join(problems) + f'; {advice}')
    for problem in problems:
        logger.warning(f'{ALLOW_FLAG}: {problem}; the config\'s value is '
                       'used')
    return cfg


def check_any_window_maximum(cfg: Config,
                             record: Optional[Mapping[str, Any]],
                             checkpoint: str) -> None:
    """Refuse a resolved any-window config whose maximum is not trained.

    Raises:
        ExperimentMismatchError: Naming the model keys and both values.
    """
    trained = (record or {}).get('any_window')
    model = cfg.get('model') or {}
    ours = None
    if model.get('any_window') is not None:
        ours = dict(num_frames=int(model['num_frames']),
                    modalities=list(model['modalities']))
    if record is None or _plain(ours) == _plain(trained):
        return
    raise ExperimentMismatchError(
        f'{checkpoint}: the any-window maximum (model.num_frames, '
        f'model.modalities) differs from the checkpoint\'s: {ours} vs '
        f'{trained}; use the training config')


def provenance(checkpoint: Optional[str], config: Optional[str],
               taxonomy: Taxonomy, record: Optional[Mapping[str, Any]]
               ) -> Dict[str, str]:
    """What a map states about the model that made it (plain strings).

    Args:
        checkpoint: The checkpoint file (None: untrained weights).
        config: The config file, or None when the checkpoint's own config
            was used.
        taxonomy: The taxonomy the model decodes with.
        record: The checkpoint's experiment record, or None.
    """
    return dict(
        checkpoint=osp.abspath(checkpoint) if checkpoint else 'none',
        config=osp.abspath(config) if config else 'the checkpoint\'s own',
        taxonomy_digest=taxonomy.digest(),
        taxonomy_source=str(taxonomy.source),
        experiment_record='checked' if record is not None else
        'absent (older or converted checkpoint)',
        h2crop_version=__version__)


def checkpoint_choices(checkpoint: str) -> Tuple[Any, int]:
    """Taxonomy and tile size a checkpoint was trained with.

    For the converters' ``--like-checkpoint``: tiles of a new region made
    for a trained model use its taxonomy and tile size.

    Returns:
        The embedded taxonomy table (None for the numeric fallback) and the
        tile size.

    Raises:
        ExperimentConfigError: When the checkpoint carries no experiment
            record (or cannot be read).
    """
    from h2crop.models.weights.io import (
        CheckpointReadError,
        read_checkpoint_meta,
    )
    try:
        record = record_of_meta(read_checkpoint_meta(checkpoint))
    except (FileNotFoundError, CheckpointReadError) as err:
        raise ExperimentConfigError(str(err)) from None
    if record is None:
        raise ExperimentConfigError(
            f'{checkpoint} carries no experiment record (older or converted '
            'checkpoint): give --taxonomy instead of --like-checkpoint')
    return record_taxonomy(record, checkpoint), int(record['tile_size'])
