"""An experiment's choices, stated once in a config, derived at build time.

The choices are stated once at the top of a config and derived everywhere
at build time. A config states the experiment's choices as top-level keys
(:data:`EXPERIMENT_KEYS`): ``data_root``, ``data_lists`` (folder of split
lists), ``taxonomy``, ``modalities``, ``end_month``, ``levels``,
``tile_size``, ``train_crop_size``, ``max_epochs`` and the band statistics
``norm_mean`` / ``norm_std``. :func:`resolve_experiment` writes them into
every place that uses them: the datasets of the three dataloaders (and the
tile size their loader checks), the model (``modalities``, ``num_frames``,
``levels``, ``taxonomy``, the EnMAP encoder -- present exactly when
``'enmap'`` is a modality, with ``img_size = tile_size // ENMAP_SCALE`` --
and the data preprocessor's statistics), the evaluators, the train loop and
the ends of the epoch-based learning-rate schedulers. ``train_crop_size``
(default None: whole tiles) trains on random crops of that side: it adds
``H2CropRandomCrop`` to the train pipeline, sizes the EnMAP encoder's
window (``img_size = train_crop_size // ENMAP_SCALE``) and makes the model
test on sliding windows of the same size (``model.test_cfg``). For an
any-window model (``model.any_window`` set) ``end_month`` and
``modalities`` describe the data only; the model keeps its own maximum
window and modalities
(``model.num_frames``, ``model.modalities``) and takes any subset of them.

A lower-level value that contradicts a choice (``model.num_frames=6`` with
``end_month=12``) is refused with a message naming the top-level key to set.
The values derived are recorded under :data:`RESOLVED_KEY`, so a resolved
config (e.g. one dumped into a work dir) can be resolved again after its
choices changed.
"""
import copy
import os.path as osp
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

from mmengine.config import Config, ConfigDict

from h2crop.constants import (
    DATA_LISTS_DIR,
    ENMAP,
    ENMAP_SCALE,
    LEVELS,
    MODALITIES,
    NUM_MONTHS,
    SPLITS,
    TAXONOMY_FILE,
    TILE_SIZE,
)
from h2crop.taxonomy import is_embedded
from h2crop.validators import check_levels, check_modalities

#: Top-level keys that state an experiment's choices.
EXPERIMENT_KEYS: Tuple[str, ...] = (
    'data_root', 'data_lists', 'taxonomy', 'modalities', 'end_month',
    'levels', 'tile_size', 'train_crop_size', 'max_epochs', 'norm_mean',
    'norm_std')
#: Where :func:`resolve_experiment` records the choices it derived from.
RESOLVED_KEY = 'experiment_resolved'
#: Dataloader config key per split.
LOADERS: Dict[str, str] = {split: f'{split}_dataloader' for split in SPLITS}
EVALUATORS: Tuple[str, ...] = ('val_evaluator', 'test_evaluator')
#: Defaults of choices a config may leave out.
DEFAULTS: Dict[str, Any] = dict(data_lists=DATA_LISTS_DIR,
                                modalities=MODALITIES,
                                end_month=NUM_MONTHS,
                                levels=LEVELS,
                                tile_size=TILE_SIZE,
                                train_crop_size=None)
_LOADER_TRANSFORM = 'LoadH2CropH5'
_CROP_TRANSFORM = 'H2CropRandomCrop'
#: Smallest ``train_crop_size``: the fusion decoder starts at 1/32 of it.
MIN_TRAIN_CROP = 32
_MISSING = object()


class ExperimentConfigError(ValueError):
    """A config's choices are invalid or contradicted by a lower level."""


def _plain(value: Any) -> Any:
    """Lists / tuples / ConfigDicts as comparable plain Python values."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _is_dict(value: Any) -> bool:
    return isinstance(value, (dict, ConfigDict))


def _validate(choices: Dict[str, Any]) -> None:
    """Refuse invalid choices, naming the key and what is expected."""
    for key, check in (('modalities', check_modalities),
                       ('levels', check_levels)):
        try:
            check(choices[key])
        except (TypeError, ValueError) as err:
            raise ExperimentConfigError(f'{key}={choices[key]!r}: {err}') \
                from None
    for key, low, high in (('end_month', 1, NUM_MONTHS),
                           ('tile_size', 1, None), ('max_epochs', 1, None)):
        value = choices.get(key)
        if key == 'max_epochs' and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < low or (high is not None and value > high):
            bound = f'{low}..{high}' if high else f'>= {low}'
            raise ExperimentConfigError(
                f'{key}={value!r}: expected an integer {bound}')
    if choices['tile_size'] % ENMAP_SCALE:
        raise ExperimentConfigError(
            f'tile_size={choices["tile_size"]}: expected a multiple of '
            f'{ENMAP_SCALE} (S2 pixels per EnMAP pixel)')
    crop = choices['train_crop_size']
    if crop is not None and (
            isinstance(crop, bool) or not isinstance(crop, int) or
            crop % ENMAP_SCALE or not MIN_TRAIN_CROP <= crop <=
            choices['tile_size']):
        raise ExperimentConfigError(
            f'train_crop_size={crop!r}: expected None (train on whole '
            f'tiles) or a multiple of {ENMAP_SCALE} from {MIN_TRAIN_CROP} '
            f'to tile_size={choices["tile_size"]}')
    for key in ('data_root', 'data_lists'):
        if not isinstance(choices[key], str) or not choices[key]:
            raise ExperimentConfigError(
                f'{key}={choices[key]!r}: expected a folder path')
    tax = choices['taxonomy']
    if tax is not None and not isinstance(tax, str) and \
            not is_embedded(tax):
        raise ExperimentConfigError(
            f'taxonomy={tax!r}: expected a cascade_labels.csv path, None '
            "(the paper's class counts, no names) or a taxonomy table "
            "embedded by a checkpoint ({'rows': [...], ...})")


def _choices(cfg: Config, prev: Mapping[str, Any]) -> Dict[str, Any]:
    """The experiment's choices: stated keys, else defaults."""
    if 'data_root' not in cfg:
        raise ExperimentConfigError(
            'the config states no data_root (the folder holding h5_data/)')
    choices = {k: cfg.get(k, DEFAULTS.get(k)) for k in EXPERIMENT_KEYS
               if k != 'taxonomy'}
    derived_tax = osp.join(choices['data_root'], TAXONOMY_FILE)
    # ``taxonomy`` left out follows data_root; a value that a previous
    # resolution derived from the old data_root follows it as well.
    if 'taxonomy' not in cfg or (prev.get('taxonomy_from_data_root') and
                                 cfg.taxonomy == prev.get('taxonomy')):
        choices['taxonomy'] = derived_tax
        choices['taxonomy_from_data_root'] = True
    else:
        choices['taxonomy'] = cfg.taxonomy
        choices['taxonomy_from_data_root'] = False
    for key in ('modalities', 'levels'):
        if isinstance(choices[key], list):
            choices[key] = tuple(choices[key])
    return choices


class _Binder:
    """Writes derived values, refusing lower-level contradictions."""

    def __init__(self, choices: Mapping[str, Any],
                 prev: Mapping[str, Any]) -> None:
        self.choices = choices
        self.prev = prev

    def bind(self, owner: Any, key: str, top: str, where: str,
             derive: Callable[[Any], Any] = lambda v: v) -> None:
        """Set ``owner[key] = derive(choices[top])``.

        An existing value is accepted when it equals the new one or the one
        a previous resolution derived; otherwise the config contradicts
        itself and the user is told which top-level key to set.
        """
        was = derive(self.prev[top]) if top in self.prev else _MISSING
        self.bind_value(owner, key, derive(self.choices[top]), was, top,
                        where)

    def bind_value(self, owner: Any, key: str, value: Any, was: Any,
                   top: str, where: str) -> None:
        """Set ``owner[key] = value`` derived from the choice ``top``.

        ``was`` is the value a previous resolution derived (or
        ``_MISSING``); an existing value equal to it is replaced.
        """
        current = owner.get(key, _MISSING)
        if current is not _MISSING and _plain(current) != _plain(value):
            if was is _MISSING or _plain(current) != _plain(was):
                raise ExperimentConfigError(
                    f'{where}.{key}={_plain(current)!r} contradicts '
                    f'{top}={_plain(self.choices[top])!r}: set {top} '
                    f'instead (it reaches every place that uses it) and '
                    f'leave {where}.{key} out')
        owner[key] = copy.deepcopy(value)


def _evaluators(cfg: Config) -> Iterator[Tuple[str, Any]]:
    for name in EVALUATORS:
        evs = cfg.get(name)
        if isinstance(evs, list):
            for i, ev in enumerate(evs):
                if _is_dict(ev):
                    yield f'{name}[{i}]', ev
        elif _is_dict(evs):
            yield name, evs


def _bind_data(cfg: Config, b: _Binder) -> None:
    for split, name in LOADERS.items():
        loader = cfg.get(name)
        if not _is_dict(loader) or not _is_dict(loader.get('dataset')):
            continue
        ds = loader['dataset']
        where = f'{name}.dataset'
        b.bind(ds, 'data_root', 'data_root', where)
        b.bind(ds, 'ann_file', 'data_lists', where,
               lambda d, s=split: osp.join(d, f'{s}.txt'))
        for key in ('modalities', 'end_month', 'levels', 'taxonomy'):
            b.bind(ds, key, key, where)
        for i, step in enumerate(ds.get('pipeline') or []):
            if _is_dict(step) and step.get('type') == _LOADER_TRANSFORM:
                b.bind(step, 'tile_size', 'tile_size',
                       f'{where}.pipeline[{i}]')
        _bind_crop(ds, split, where, b)


def _bind_crop(ds: Any, split: str, where: str, b: _Binder) -> None:
    """Put ``train_crop_size`` into the train pipeline (only there).

    With a crop size, an ``H2CropRandomCrop`` step follows the loader of the
    train pipeline (added when absent); one found anywhere else, or in a
    train pipeline without ``train_crop_size``, is refused: the model's
    EnMAP window follows the key, so a crop added by hand would not reach it.
    """
    pipeline = ds.get('pipeline')
    if not isinstance(pipeline, list):
        return
    crop = b.choices['train_crop_size']
    steps = [i for i, step in enumerate(pipeline)
             if _is_dict(step) and step.get('type') == _CROP_TRANSFORM]
    old = b.prev.get('train_crop_size')
    if crop is None and old and split == 'train' and all(
            pipeline[i].get('crop_size') == old for i in steps):
        for i in reversed(steps):  # added by a previous resolution
            pipeline.pop(i)
        steps = []
    if steps and (split != 'train' or crop is None):
        raise ExperimentConfigError(
            f'{where}.pipeline[{steps[0]}] is {_CROP_TRANSFORM}: set the '
            'top-level train_crop_size instead (it crops the train tiles '
            'and sizes the model\'s window); leave the step out')
    if crop is None or split != 'train':
        return
    if not steps:
        loads = [i for i, step in enumerate(pipeline)
                 if _is_dict(step) and step.get('type') == _LOADER_TRANSFORM]
        at = loads[0] + 1 if loads else 0
        pipeline.insert(at, dict(type=_CROP_TRANSFORM, crop_size=crop))
        steps = [at]
    for i in steps:
        b.bind(pipeline[i], 'crop_size', 'train_crop_size',
               f'{where}.pipeline[{i}]')


def _bind_model(cfg: Config, b: _Binder) -> None:
    model = cfg.get('model')
    if not _is_dict(model):
        return
    for key, top in (('levels', 'levels'), ('taxonomy', 'taxonomy')):
        b.bind(model, key, top, 'model')
    if model.get('any_window') is not None:
        mods = _any_window_maximum(model, b.choices)
    else:
        for key, top in (('modalities', 'modalities'),
                         ('num_frames', 'end_month')):
            b.bind(model, key, top, 'model')
        mods = b.choices['modalities']
    enmap = model.get('enmap_encoder')
    if ENMAP in mods:
        if not _is_dict(enmap):
            raise ExperimentConfigError(
                f"modalities={mods!r} include {ENMAP!r} but "
                'model.enmap_encoder is None; do not set it (the base '
                'model config holds the EnMAP encoder, used exactly when '
                f"{ENMAP!r} is a modality)")
        # the encoder's window: the training crop, else the whole tile
        top = 'train_crop_size' if b.choices['train_crop_size'] else \
            'tile_size'
        was = _MISSING
        if 'tile_size' in b.prev:
            was = (b.prev.get('train_crop_size') or
                   b.prev['tile_size']) // ENMAP_SCALE
        b.bind_value(enmap, 'img_size', b.choices[top] // ENMAP_SCALE, was,
                     top, 'model.enmap_encoder')
        _check_spectral_pool(enmap, top, b.choices[top])
    else:
        model['enmap_encoder'] = None
    _bind_test_windows(model, b)
    pre = model.get('data_preprocessor')
    if _is_dict(pre):
        for key, top in (('mean', 'norm_mean'), ('std', 'norm_std')):
            if b.choices.get(top) is not None:
                b.bind(pre, key, top, 'model.data_preprocessor')


def _check_spectral_pool(enmap: Any, top: str, side: int) -> None:
    """The EnMAP window must be a multiple of the spectral pooling."""
    pool = (enmap.get('spectral_vit') or {}).get('pool_size', 4)
    cells = side // ENMAP_SCALE
    if isinstance(pool, int) and pool > 0 and cells % pool:
        raise ExperimentConfigError(
            f'{top}={side}: its EnMAP side {cells} is not a multiple of '
            f'model.enmap_encoder.spectral_vit.pool_size={pool}; choose '
            f'{top} as a multiple of {ENMAP_SCALE * pool}')


def _bind_test_windows(model: Any, b: _Binder) -> None:
    """A model trained on crops tests on windows of the same size.

    With ``train_crop_size`` the model's ``test_cfg`` defaults to sliding
    windows of that size (``mode='slide'``, ``crop_size``); a stated
    ``crop_size`` that differs is refused.
    """
    crop = b.choices['train_crop_size']
    test_cfg = model.get('test_cfg')
    if crop is None:
        old = b.prev.get('train_crop_size')
        if old and _is_dict(test_cfg) and test_cfg.get('crop_size') == old:
            # derived by a previous resolution that trained on crops
            test_cfg.pop('crop_size')
            if test_cfg.get('mode') == 'slide':
                test_cfg.pop('mode')
        return
    if test_cfg is None:
        model['test_cfg'] = {}
        test_cfg = model['test_cfg']  # the ConfigDict made of it
    test_cfg.setdefault('mode', 'slide')
    b.bind(test_cfg, 'crop_size', 'train_crop_size', 'model.test_cfg')


def _any_window_maximum(model: Any, choices: Mapping[str, Any]
                        ) -> Tuple[str, ...]:
    """Keep an any-window model's own window and modalities.

    For a model with ``any_window`` set, ``end_month`` and ``modalities``
    describe the data (what the dataloaders load, what a test sees); the
    model is built for its maximum, ``model.num_frames`` (default: all
    months) and ``model.modalities`` (default: all), and takes any window
    and input subset within it.

    Returns:
        The model's modalities.

    Raises:
        ExperimentConfigError: If the data asks for more months or other
            modalities than the model has.
    """
    frames = model.get('num_frames', NUM_MONTHS)
    if isinstance(frames, bool) or not isinstance(frames, int) or \
            not 1 <= frames <= NUM_MONTHS:
        raise ExperimentConfigError(
            f'model.num_frames={frames!r}: expected an integer '
            f'1..{NUM_MONTHS} (the any-window model\'s longest window)')
    try:
        mods = check_modalities(model.get('modalities', MODALITIES))
    except (TypeError, ValueError) as err:
        raise ExperimentConfigError(
            f'model.modalities={_plain(model.get("modalities"))!r}: '
            f'{err}') from None
    if choices['end_month'] > frames:
        raise ExperimentConfigError(
            f'end_month={choices["end_month"]} exceeds model.num_frames='
            f'{frames} of the any-window model (model.any_window): set '
            f'end_month to 1..{frames}')
    extra = [m for m in choices['modalities'] if m not in mods]
    if extra:
        raise ExperimentConfigError(
            f'modalities={_plain(choices["modalities"])!r}: the any-window '
            f'model (model.any_window) has no {extra} input; choose a '
            f'subset of model.modalities={mods}')
    model['num_frames'] = frames
    model['modalities'] = mods
    return mods


def _schedulers(cfg: Config) -> List[Any]:
    sched = cfg.get('param_scheduler')
    if _is_dict(sched):
        return [sched]
    return [s for s in (sched or []) if _is_dict(s)]


def _bind_schedule(cfg: Config, b: _Binder) -> None:
    max_epochs = b.choices['max_epochs']
    if max_epochs is None:
        return
    train_cfg = cfg.get('train_cfg')
    if _is_dict(train_cfg) and train_cfg.get(
            'type', 'EpochBasedTrainLoop') == 'EpochBasedTrainLoop':
        b.bind(train_cfg, 'max_epochs', 'max_epochs', 'train_cfg')
    for i, sched in enumerate(_schedulers(cfg)):
        if not sched.get('by_epoch', True):
            continue
        where = f'param_scheduler[{i}]'
        end = sched.get('end', _MISSING)
        was = b.prev.get('max_epochs', _MISSING)
        if end is _MISSING or end == was or end == max_epochs:
            sched['end'] = max_epochs
        elif end > max_epochs:
            raise ExperimentConfigError(
                f'{where}.end={end} exceeds max_epochs={max_epochs}: leave '
                f'{where}.end out to follow max_epochs')


def resolve_experiment(cfg: Config) -> Config:
    """Derive every setting that depends on the experiment's choices.

    Args:
        cfg: A loaded config (``--cfg-options`` already merged).

    Returns:
        A resolved copy of ``cfg``; the top-level choices are all stated
        (defaults filled in) and recorded under :data:`RESOLVED_KEY`.

    Raises:
        ExperimentConfigError: If a choice is invalid, or a lower-level value
            contradicts one (the message names the key to set).
    """
    cfg = copy.deepcopy(cfg)
    prev = dict(cfg.get(RESOLVED_KEY) or {})
    choices = _choices(cfg, prev)
    _validate(choices)
    binder = _Binder(choices, prev)
    _bind_data(cfg, binder)
    _bind_model(cfg, binder)
    for where, ev in _evaluators(cfg):
        binder.bind(ev, 'levels', 'levels', where)
        binder.bind(ev, 'taxonomy', 'taxonomy', where)
    _bind_schedule(cfg, binder)
    for key in EXPERIMENT_KEYS:
        if key == 'taxonomy' and choices['taxonomy_from_data_root']:
            continue
        if choices.get(key) is not None or key in cfg:
            cfg[key] = copy.deepcopy(choices[key])
    cfg[RESOLVED_KEY] = copy.deepcopy(choices)
    return cfg


def experiment_choices(cfg: Config) -> Dict[str, Any]:
    """The choices a resolved config was derived from (for tools/logs)."""
    resolved = cfg.get(RESOLVED_KEY)
    if not resolved:
        raise ExperimentConfigError(
            'config not resolved; call resolve_experiment(cfg) first')
    return dict(resolved)


def splits_in_use(cfg: Config) -> List[str]:
    """Splits whose dataloader the config holds, in train/val/test order."""
    return [split for split, name in LOADERS.items()
            if _is_dict(cfg.get(name))]


