"""Every key of a config checked before anything is built or trained.

mmengine accepts any key it is given: a misspelt ``--cfg-options`` key or a
typo in a config file reaches a constructor only when the Runner builds that
part, which for a hook is after the first epoch (and then no checkpoint is
saved). This module checks a config's keys against what reads them, in
seconds and before the Runner exists (so no timestamped folder is left):

* a dict that builds a registered class (``type=``, followed through the
  ``h2crop`` registries and their mmengine parents: models, necks, heads,
  datasets, transforms, samplers, hooks, optimizers, optimizer wrappers,
  schedulers, loops, metrics, evaluators, visualizers) may hold the
  arguments of that class's constructor. A constructor that takes
  ``**kwargs`` accepts its parent's arguments as well when its source
  passes them on to ``super().__init__`` (verified by reading it); one that
  hands them elsewhere is accepted as open, except for the forwards known
  here (:data:`_KWARGS_FORWARDS`);
* dicts the Runner reads itself (dataloaders, ``env_cfg``, ``randomness``,
  ``auto_scale_lr``) may hold what the Runner reads there;
* plain-dict arguments of a class (``model.test_cfg``, ``any_window``, the
  EnMAP encoder's ``spatial_vit``, ...) may hold the keys the class declares
  in its ``dict_arg_keys`` attribute (a tuple of keys, or the default
  ``type`` of a dict built through the same registry);
* other plain dicts may hold what the config already holds there (a key
  ``--cfg-options`` adds to such a dict is refused).

Lists of such dicts (``pipeline``, ``param_scheduler``, ``custom_hooks``,
evaluator lists) are checked item by item. A key outside these is refused
in one line naming it, the closest valid names and what reads it::

    default_hooks.checkpoint.intervall: H2CropCheckpointHook takes no
    'intervall'; did you mean 'interval'?

:func:`merge_checked` is the one entry point: tools/train.py, tools/test.py
(:func:`h2crop.engine.runner_builder.prepare_cfg`), the inference API
(:func:`h2crop.apis.inference.resolve_inference_cfg`) and the analysis tools
merge their ``--cfg-options`` through it.
"""
import ast
import difflib
import functools
import inspect
import textwrap
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from mmengine.config import Config
from mmengine.registry import Registry

from .experiment import EXPERIMENT_KEYS, ExperimentConfigError, _is_dict

#: Keys every registry build reads besides the constructor's arguments.
_BUILD_KEYS = frozenset({'type', '_scope_'})
#: Keys mmengine's config merging consumes.
_MERGE_KEYS = frozenset({'_delete_'})
#: Types mmengine's Runner gives the default hooks left without one.
DEFAULT_HOOK_TYPES: Dict[str, str] = dict(
    runtime_info='RuntimeInfoHook', timer='IterTimerHook',
    sampler_seed='DistSamplerSeedHook', logger='LoggerHook',
    param_scheduler='ParamSchedulerHook', checkpoint='CheckpointHook')
#: Arguments mmengine's CheckpointHook passes to ``runner.save_checkpoint``
#: itself; its other keyword arguments go there as well.
_CHECKPOINT_HOOK_PASSES = frozenset({
    'out_dir', 'filename', 'file_client_args', 'save_optimizer',
    'save_param_scheduler', 'meta', 'by_epoch', 'backend_args'})
#: Most names quoted when no close match exists.
_MAX_QUOTED = 24

Path = Tuple[Union[str, int], ...]


class OptionKeyError(ExperimentConfigError):
    """A config or ``--cfg-options`` key that nothing reads."""


def dotted(path: Path) -> str:
    """``('a', 'b', 0, 'c')`` -> ``'a.b.0.c'``, as ``--cfg-options``."""
    return '.'.join(str(p) for p in path)


# ---------------------------------------------------------------- signatures
def _params(func: Callable) -> Tuple[Set[str], Optional[str]]:
    """Keyword-passable parameter names of ``func`` and its ``**`` name.

    Raises:
        ValueError / TypeError: When ``func`` has no readable signature.
    """
    names: Set[str] = set()
    var_kw = None
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          inspect.Parameter.KEYWORD_ONLY):
            names.add(name)
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = name
    names.discard('self')
    return names, var_kw


def _forwards_to_super(init: Callable, var_kw: str) -> bool:
    """Whether ``init`` passes ``**var_kw`` on to a parent ``__init__``.

    Read from the source: a call ``super().__init__(..., **var_kw)`` (or
    ``Parent.__init__(self, ..., **var_kw)``).
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and
                isinstance(node.func, ast.Attribute) and
                node.func.attr == '__init__'):
            continue
        if any(kw.arg is None and isinstance(kw.value, ast.Name) and
               kw.value.id == var_kw for kw in node.keywords):
            return True
    return False


def _checkpoint_hook_extras() -> FrozenSet[str]:
    """Extra keywords mmengine's CheckpointHook can take.

    It hands them to ``runner.save_checkpoint``; with h2crop's runner that
    leaves none (the hook sets every argument of it already).
    """
    from .runner import H2CropRunner
    names, var_kw = _params(H2CropRunner.save_checkpoint)
    if var_kw is not None:
        return frozenset({'*'})
    return frozenset(names - _CHECKPOINT_HOOK_PASSES)


def _kwargs_forwards() -> Dict[type, Callable[[], FrozenSet[str]]]:
    """Classes whose ``**kwargs`` go somewhere known (not a parent)."""
    import torch
    from mmengine.hooks import CheckpointHook
    return {
        CheckpointHook: _checkpoint_hook_extras,
        # nn.Module.__init__ takes **kwargs only to refuse them
        torch.nn.Module: frozenset,
    }


@functools.cache
def accepted_keys(cls: Callable) -> Optional[FrozenSet[str]]:
    """The keys a config dict may give ``cls`` (None: any key).

    Follows ``**kwargs`` up the class's MRO while each constructor passes
    them on to its parent; a constructor that takes ``**kwargs`` and hands
    them elsewhere makes the class open, except for the forwards of
    :func:`_kwargs_forwards`.

    Args:
        cls: A registered class, or a function built from a config.

    Returns:
        The keyword arguments, or None when they cannot be known.
    """
    if not inspect.isclass(cls):
        try:
            names, var_kw = _params(cls)
        except (TypeError, ValueError):
            return None
        return None if var_kw else frozenset(names)
    forwards = _kwargs_forwards()
    names: Set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            break
        try:
            own, var_kw = _params(init)
        except (TypeError, ValueError):
            return None
        names |= own
        if var_kw is None:
            break
        if klass in forwards:
            extra = forwards[klass]()
            return None if '*' in extra else frozenset(names | extra)
        if not _forwards_to_super(init, var_kw):
            return None
    return frozenset(names)


# ---------------------------------------------------------------- specs
@dataclass(frozen=True)
class Built:
    """A dict built through a registry (``type=`` names the class).

    Args:
        registry: Where ``type`` is looked up (with its parents).
        default_type: The type used when the dict names none.
        extra: Keys the builder reads besides the constructor's arguments.
        strict_type: Report a ``type`` the registry does not hold (off for
            nested dicts whose registry is only a guess).
        what: Noun for messages (``'model'``, ``'hook'``).
    """

    registry: Registry
    default_type: Optional[str] = None
    extra: Tuple[str, ...] = ()
    strict_type: bool = True
    what: str = ''


@dataclass(frozen=True)
class Keys:
    """A plain dict with a fixed set of keys.

    Args:
        keys: Allowed key -> spec of its value (None: any value).
        owner: What reads the dict, for messages.
    """

    keys: Mapping[str, Any]
    owner: str


@dataclass(frozen=True)
class Each:
    """A dict of named items (``default_hooks``) with one spec each."""

    item: Any
    defaults: Mapping[str, str] = field(default_factory=dict)


#: Any key, any value.
OPEN = 'open'
#: A plain dict: keys the config held before the options were merged.
HELD = 'held'


def _registries() -> Dict[str, Registry]:
    from h2crop import registry as reg
    return dict(
        model=reg.MODELS, dataset=reg.DATASETS, transform=reg.TRANSFORMS,
        sampler=reg.DATA_SAMPLERS, hook=reg.HOOKS, optimizer=reg.OPTIMIZERS,
        optim_wrapper=reg.OPTIM_WRAPPERS,
        param_scheduler=reg.PARAM_SCHEDULERS, loop=reg.LOOPS,
        metric=reg.METRICS, evaluator=reg.EVALUATOR,
        visualizer=reg.VISUALIZERS, vis_backend=reg.VISBACKENDS,
        log_processor=reg.LOG_PROCESSORS, model_wrapper=reg.MODEL_WRAPPERS,
        initializer=reg.WEIGHT_INITIALIZERS)


def _built(kind: str, **kwargs) -> Built:
    return Built(_registries()[kind], what=kind.replace('_', ' '), **kwargs)


#: Arguments whose typed dicts are built through another registry than
#: their owner's: argument -> (registry kind, extra keys of the builder).
_CHILD_KINDS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    'pipeline': ('transform', ()),
    'transforms': ('transform', ()),
    'dataset': ('dataset', ()),
    'datasets': ('dataset', ()),
    'sampler': ('sampler', ()),
    'batch_sampler': ('sampler', ()),
    'optimizer': ('optimizer', ()),
    'vis_backends': ('vis_backend', ()),
    'init_cfg': ('initializer', ('override', )),
    'metrics': ('metric', ()),
    'data_preprocessor': ('model', ()),
    # mmcv's layer builders: build_norm_layer also reads requires_grad
    'norm_cfg': ('model', ('requires_grad', )),
    'act_cfg': ('model', ()),
    'conv_cfg': ('model', ()),
}


def _loader_spec() -> Keys:
    """A dataloader dict, as ``Runner.build_dataloader`` reads it."""
    from torch.utils.data import DataLoader
    names, _ = _params(DataLoader.__init__)
    keys: Dict[str, Any] = {k: None for k in names}
    keys.update(dataset=_built('dataset'), sampler=_built('sampler'),
                batch_sampler=_built('sampler'), collate_fn=OPEN,
                worker_init_fn=OPEN, num_batch_per_epoch=None,
                disable_subprocess_warning=None)
    return Keys(keys, 'the dataloader (torch DataLoader)')


def _evaluator_spec(value: Any) -> Any:
    if isinstance(value, list):
        return [_built('metric')] * len(value)
    if _is_dict(value) and 'metrics' in value:
        return _built('evaluator', default_type='Evaluator')
    return _built('metric')


def _optim_wrapper_spec(value: Any) -> Any:
    if not _is_dict(value) or 'optimizer' not in value:
        return OPEN  # several optimizers, or a custom constructor's layout
    if value.get('constructor', 'DefaultOptimWrapperConstructor') != \
            'DefaultOptimWrapperConstructor':
        return OPEN
    return _built('optim_wrapper', default_type='OptimWrapper',
                  extra=('constructor', 'paramwise_cfg'))


def _scheduler_spec(value: Any) -> Any:
    one = _built('param_scheduler', extra=('convert_to_iter_based', ))
    if isinstance(value, list):
        return [one] * len(value)
    return one if _is_dict(value) and 'type' in value else OPEN


def _train_loop_spec(value: Any) -> Any:
    if _is_dict(value) and 'type' not in value:
        loop = 'EpochBasedTrainLoop' if value.get('by_epoch', True) else \
            'IterBasedTrainLoop'
        return _built('loop', default_type=loop, extra=('by_epoch', ))
    return _built('loop')


def _runner_env_spec() -> Keys:
    from mmengine.utils.dl_utils import set_multi_processing
    mp_keys, _ = _params(set_multi_processing)
    mp_keys.discard('distributed')
    return Keys(dict(cudnn_benchmark=None,
                     mp_cfg=Keys({k: None for k in mp_keys},
                                 'env_cfg.mp_cfg (set_multi_processing)'),
                     dist_cfg=OPEN, resource_limit=None),
                'env_cfg (Runner.setup_env)')


def _randomness_spec() -> Keys:
    from mmengine.runner import Runner
    names, _ = _params(Runner.set_randomness)
    return Keys({k: None for k in names}, 'randomness (Runner.set_randomness)')


#: Top-level keys the checker knows -> spec (a callable of the value).
_TOP: Dict[str, Callable[[Any], Any]] = {
    'model': lambda v: _built('model'),
    'train_dataloader': lambda v: _loader_spec(),
    'val_dataloader': lambda v: _loader_spec(),
    'test_dataloader': lambda v: _loader_spec(),
    'train_cfg': _train_loop_spec,
    'val_cfg': lambda v: _built('loop', default_type='ValLoop'),
    'test_cfg': lambda v: _built('loop', default_type='TestLoop'),
    'val_evaluator': _evaluator_spec,
    'test_evaluator': _evaluator_spec,
    'optim_wrapper': _optim_wrapper_spec,
    'param_scheduler': _scheduler_spec,
    'default_hooks': lambda v: Each(_built('hook', extra=('priority', )),
                                    DEFAULT_HOOK_TYPES),
    'custom_hooks': lambda v: [_built('hook', extra=('priority', ))] * len(
        v or []),
    'visualizer': lambda v: _built('visualizer'),
    'log_processor': lambda v: _built('log_processor',
                                      default_type='LogProcessor'),
    'model_wrapper_cfg': lambda v: _built(
        'model_wrapper', default_type='MMDistributedDataParallel'),
    'env_cfg': lambda v: _runner_env_spec(),
    'randomness': lambda v: _randomness_spec(),
    'auto_scale_lr': lambda v: Keys(dict(enable=None, base_batch_size=None),
                                    'auto_scale_lr (Runner.scale_lr)'),
}


# ---------------------------------------------------------------- walking
def close_names(key: str, valid: Sequence[str]) -> List[str]:
    """The valid names closest to ``key`` (difflib; or a part of it).

    A name that is the end or start of ``key`` counts as close too
    (``decode_head`` -> ``head``).
    """
    key = str(key)
    lower = {v.lower(): v for v in valid}
    close = [lower[c] for c in difflib.get_close_matches(
        key.lower(), list(lower), n=3, cutoff=0.6)]
    parts = [v for v in valid if len(v) >= 3 and v not in close and
             (key.endswith(v) or key.startswith(v))]
    return close + sorted(parts, key=len, reverse=True)[:3 - len(close)]


def _suggest(key: str, valid: Sequence[str]) -> str:
    """``; did you mean 'x'?`` or the list of valid names."""
    valid = sorted(str(v) for v in valid)
    close = close_names(key, valid)
    if close:
        return '; did you mean ' + ' or '.join(repr(c) for c in close) + '?'
    if not valid:
        return ''
    shown = ', '.join(valid[:_MAX_QUOTED])
    more = f' and {len(valid) - _MAX_QUOTED} more' if len(valid) > \
        _MAX_QUOTED else ''
    return f'; valid: {shown}{more}'


def registry_names(registry: Registry) -> List[str]:
    """Every name ``registry`` and its parents hold (lazy modules loaded)."""
    names: Set[str] = set()
    node: Optional[Registry] = registry
    while node is not None:
        node.import_from_location()
        names |= set(node.module_dict)
        node = node.parent
    return sorted(names)


@dataclass
class _Problem:
    path: Path
    message: str


class _Walker:
    """Walk a merged config with its specs, collecting problems.

    Args:
        original: The config before the options were merged.
    """

    def __init__(self, original: Mapping) -> None:
        self.original = original
        self.problems: List[_Problem] = []

    def report(self, path: Path, message: str) -> None:
        self.problems.append(_Problem(path, message))

    def held_keys(self, path: Path) -> Optional[Set[str]]:
        """Keys the original config holds at ``path`` (None: no dict)."""
        node, depth = _follow(self.original, path)
        if depth < len(path):
            return None
        return set(node) if _is_dict(node) and node else None

    def walk(self, path: Path, value: Any, spec: Any) -> None:
        if spec is None or spec == OPEN or value is None:
            return
        if isinstance(spec, list):
            if isinstance(value, list):
                for i, (item, sub) in enumerate(zip(value, spec)):
                    self.walk(path + (i, ), item, sub)
            return
        if spec == HELD:
            self.walk_held(path, value)
        elif isinstance(spec, Built):
            if _is_dict(value):
                self.walk_built(path, value, spec)
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    self.walk(path + (i, ), item, spec)
        elif isinstance(spec, Keys):
            self.walk_keys(path, value, spec)
        elif isinstance(spec, Each) and _is_dict(value):
            for name, item in value.items():
                sub = spec.item
                if _is_dict(item) and 'type' not in item and \
                        name in spec.defaults:
                    sub = Built(sub.registry, spec.defaults[name], sub.extra,
                                sub.strict_type, sub.what)
                self.walk(path + (name, ), item, sub)

    def walk_held(self, path: Path, value: Any) -> None:
        """A plain dict: refuse keys the options added to a held dict."""
        if not _is_dict(value):
            return
        held = self.held_keys(path)
        for key, item in value.items():
            if held is not None and key not in held and \
                    key not in _MERGE_KEYS:
                where = dotted(path)
                self.report(path + (key, ),
                            f'the config has no {key!r} under {where} (it '
                            f'holds {", ".join(sorted(held))})'
                            + _suggest(key, sorted(held)))
                continue
            self.walk(path + (key, ), item, _generic_child(None, key, item))

    def walk_keys(self, path: Path, value: Any, spec: Keys) -> None:
        if not _is_dict(value):
            return
        for key, item in value.items():
            if key in _MERGE_KEYS:
                continue
            if key not in spec.keys:
                self.report(path + (key, ),
                            f'{spec.owner} takes no {key!r}'
                            + _suggest(key, list(spec.keys)))
                continue
            self.walk(path + (key, ), item, spec.keys[key])

    def resolve(self, path: Path, value: Mapping, spec: Built
                ) -> Optional[Callable]:
        """The class ``value`` builds (None: unknown, reported if strict)."""
        kind = value.get('type', spec.default_type)
        if kind is None:
            if spec.strict_type:
                self.report(path, f'no type= for this {spec.what or "part"}'
                            ' (which class to build)')
            return None
        if not isinstance(kind, str):
            return kind if callable(kind) else None
        found = spec.registry.get(kind)
        if found is None and spec.strict_type:
            names = registry_names(spec.registry)
            hint = _suggest(kind, names) if close_names(kind, names) else \
                _suggest(kind, sorted(spec.registry.module_dict))
            self.report(path + ('type', ),
                        f'no {spec.what or "class"} {kind!r} in the h2crop '
                        'or mmengine registries' + hint)
        return found

    def walk_built(self, path: Path, value: Mapping, spec: Built) -> None:
        cls = self.resolve(path, value, spec)
        if cls is None:
            return
        accepted = accepted_keys(cls)
        name = getattr(cls, '__name__', str(cls))
        declared = getattr(cls, 'dict_arg_keys', None) or {}
        for key, item in value.items():
            if key in _BUILD_KEYS or key in _MERGE_KEYS or key in spec.extra:
                continue
            if accepted is not None and key not in accepted:
                self.report(path + (key, ),
                            f'{name} takes no {key!r}'
                            + _suggest(key, sorted(accepted)))
                continue
            sub = _declared_child(declared.get(key), spec, name, key)
            if sub is None:
                sub = _generic_child(spec, key, item)
            self.walk(path + (key, ), item, sub)


def _declared_child(declared: Any, parent: Built, owner: str,
                    key: str) -> Any:
    """Spec of a plain-dict argument the class declares."""
    if declared is None:
        return None
    if isinstance(declared, str):
        return Built(parent.registry, declared, (), True, parent.what)
    if callable(declared):
        names, var_kw = _params(declared)
        return OPEN if var_kw else Keys({k: None for k in names},
                                        f"{owner}'s {key}")
    return Keys({k: None for k in declared}, f"{owner}'s {key}")


def _generic_child(parent: Optional[Built], key: str, value: Any) -> Any:
    """Spec of an argument's value by the argument's name and content."""
    typed = (_is_dict(value) and 'type' in value) or (
        isinstance(value, list) and value and
        all(_is_dict(v) and 'type' in v for v in value))
    if key in _CHILD_KINDS and (typed or key not in ('init_cfg', )):
        kind, extra = _CHILD_KINDS[key]
        if _is_dict(value) or isinstance(value, list):
            return _built(kind, extra=extra)
    if typed and parent is not None:
        # a nested part built like its owner (e.g. a model's encoder)
        strict = parent.registry is _registries()['model']
        return Built(parent.registry, None, (), strict, parent.what)
    if _is_dict(value):
        return HELD
    return None


# ---------------------------------------------------------------- options
def runner_keys() -> Set[str]:
    """Top-level keys the Runner reads (its constructor's arguments)."""
    from mmengine.runner import Runner

    from .runner import H2CropRunner
    names, _ = _params(H2CropRunner.__init__)
    names |= _params(Runner.__init__)[0]
    return names | {'runner_type'}


def _split_key(cfg: Mapping, key: str) -> Path:
    """An option key as a path (list indices as ints)."""
    parts: List[Union[str, int]] = []
    node: Any = cfg
    for part in key.split('.'):
        if isinstance(node, list) and part.isdigit():
            parts.append(int(part))
            node = node[int(part)] if int(part) < len(node) else None
        else:
            parts.append(part)
            node = node.get(part) if _is_dict(node) else None
    return tuple(parts)


def _follow(node: Any, path: Path) -> Tuple[Any, int]:
    """The node at ``path`` below ``node``, as far as it exists.

    Returns:
        The deepest node reached and how many parts of ``path`` led there.
    """
    for depth, part in enumerate(path):
        if isinstance(part, int) and isinstance(node, list) and \
                part < len(node):
            node = node[part]
        elif _is_dict(node) and part in node:
            node = node[part]
        else:
            return node, depth
    return node, len(path)


def _added(cfg: Mapping, paths: Sequence[Path]) -> Set[Path]:
    """For each option path, the first part the config did not hold."""
    added: Set[Path] = set()
    for path in paths:
        depth = _follow(cfg, path)[1]
        if depth < len(path):
            added.add(path[:depth + 1])
    return added


def _plain_root(cfg: Mapping) -> Mapping:
    """The ConfigDict of a Config (itself for a dict)."""
    return cfg._cfg_dict if isinstance(cfg, Config) else cfg


def _bad_index(cfg: Mapping, key: str) -> str:
    """Why a list index of an option key does not exist ('' when fine)."""
    node: Any = _plain_root(cfg)
    done: List[str] = []
    for part in key.split('.'):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return (f'{".".join(done)} is a list of {len(node)} '
                        f'item(s); {part!r} is no index of it')
            node = node[int(part)]
        elif _is_dict(node) and part in node:
            node = node[part]
        else:
            return ''
        done.append(part)
    return ''


def check_option_keys(cfg: Config, options: Mapping[str, Any]) -> None:
    """Refuse ``--cfg-options`` whose first key is unknown to the config.

    The top level holds no classes: an option's first key must be a key of
    the config, an experiment choice or an argument of the Runner.

    Raises:
        OptionKeyError: Naming the unknown keys and the closest names.
    """
    known = set(cfg) | set(EXPERIMENT_KEYS) | runner_keys()
    lines = []
    for key in sorted(options):
        head = key.split('.')[0]
        if head not in known:
            close = close_names(head, sorted(known))
            hint = ('; did you mean ' + ' or '.join(repr(c) for c in close)
                    + '?') if close else (
                '. The experiment choices are ' + ', '.join(EXPERIMENT_KEYS)
                + '; other keys must exist in the config (e.g. '
                'train_dataloader.batch_size)')
            lines.append(f'--cfg-options {key}: no such config key{hint}')
            continue
        bad = _bad_index(cfg, key)
        if bad:
            lines.append(f'--cfg-options {key}: {bad}')
    if lines:
        raise OptionKeyError('\n'.join(lines))


def check_config_keys(cfg: Mapping, original: Optional[Mapping] = None,
                      options: Sequence[str] = (),
                      source: str = '') -> None:
    """Check every key of a (merged) config against what reads it.

    Args:
        cfg: The config, options merged.
        original: The config before the options (for the plain dicts whose
            keys are what the config holds); default ``cfg``.
        options: The ``--cfg-options`` keys merged into ``cfg``; a problem
            under one of them is reported as the option's, others as the
            config file's.
        source: The config file, named in messages about its keys.

    Raises:
        OptionKeyError: One line per key nothing reads.
    """
    from h2crop.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    original = _plain_root(cfg if original is None else original)
    walker = _Walker(original)
    for key, value in cfg.items():
        make = _TOP.get(key)
        walker.walk((key, ), value, HELD if make is None else make(value))
    if not walker.problems:
        return
    paths = [_split_key(original, k) for k in options]
    added = _added(original, paths)
    lines = []
    for problem in walker.problems:
        mine = any(problem.path[:len(p)] == p for p in added) or any(
            problem.path[:len(p)] == p for p in paths)
        where = '' if mine or not source else f'{source}: '
        lines.append(f'{where}{dotted(problem.path)}: {problem.message}')
    raise OptionKeyError('\n'.join(lines))


def merge_checked(cfg: Config, options: Optional[Mapping[str, Any]] = None
                  ) -> Config:
    """Merge ``--cfg-options`` into ``cfg`` and check every key.

    Args:
        cfg: A loaded config (changed in place and returned).
        options: ``--cfg-options`` as parsed by mmengine's ``DictAction``.

    Returns:
        ``cfg`` with the options merged.

    Raises:
        OptionKeyError: A key of the options or of the config file that
            nothing reads (one line each: key, closest valid names, what
            reads it).
    """
    import copy
    options = dict(options or {})
    original = copy.deepcopy(_plain_root(cfg))
    if options:
        check_option_keys(cfg, options)
        cfg.merge_from_dict(options)
    check_config_keys(cfg, original, list(options),
                      getattr(cfg, 'filename', '') or '')
    return cfg

