"""Reading checkpoints: the one place where weight files are opened.

Every reader of the project (the AgriFM initializer and converter, the
converter of original H2Crop checkpoints, the Runner's loader of our own
training checkpoints and ``h2crop.apis.init_model``) goes through
:func:`load_checkpoint_file` / :func:`read_state_dict`, with one of two
explicit trust levels:

* :data:`WEIGHTS_ONLY` (default): ``torch.load(weights_only=True)``, which
  unpickles only tensors and plain containers. For every file that did not
  come out of this project's own training (AgriFM, original checkpoints,
  anything downloaded). ``.npz`` files are read with NumPy without pickle.
* :data:`TRUSTED`: a full unpickle (``weights_only=False``). Only for
  checkpoints written by h2crop's own Runner (they hold mmengine's message
  hub and NumPy RNG states, which ``weights_only`` refuses), or files a
  user explicitly vouches for (``--allow-pickle``).
"""
import os.path as osp
from collections import OrderedDict
from typing import Any, Callable, Mapping, Union

import numpy as np
import torch
from torch import Tensor

#: Trust levels of :func:`load_checkpoint_file`.
WEIGHTS_ONLY = 'weights_only'
TRUSTED = 'trusted'
TRUST_LEVELS = (WEIGHTS_ONLY, TRUSTED)

MapLocation = Union[str, Callable, torch.device, None]


class CheckpointReadError(RuntimeError):
    """A file exists but cannot be read as a checkpoint at the given trust."""


def load_checkpoint_file(path: str,
                         trust: str = WEIGHTS_ONLY,
                         map_location: MapLocation = 'cpu',
                         missing_hint: str = '',
                         mmap: bool = False) -> Any:
    """Read a checkpoint file as written by ``torch.save`` (or ``.npz``).

    Args:
        path: Local file (``~`` is expanded). Nothing is ever downloaded.
        trust: :data:`WEIGHTS_ONLY` or :data:`TRUSTED` (see module doc).
        map_location: As for :func:`torch.load`.
        missing_hint: Sentence appended to the error of a missing file.
        mmap: Map the file's tensors instead of reading them (cheap when
            only a few entries are needed, e.g. ``meta``).

    Returns:
        What the file holds (a state dict or a training checkpoint dict).

    Raises:
        ValueError: Unknown ``trust``.
        FileNotFoundError: The file does not exist.
        CheckpointReadError: The file is not a readable checkpoint, or holds
            objects that ``weights_only`` refuses (the message says how to
            vouch for it).
    """
    if trust not in TRUST_LEVELS:
        raise ValueError(f'trust must be one of {TRUST_LEVELS}, got '
                         f'{trust!r}')
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'checkpoint {path!r} does not exist. {missing_hint}'.strip())
    if path.endswith('.npz'):
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: torch.from_numpy(data[k]) for k in data.keys()}
        except Exception as exc:
            raise CheckpointReadError(
                f'{path}: not a readable .npz of arrays '
                f'({type(exc).__name__}: {exc})') from exc
    try:
        return torch.load(path, map_location=map_location,
                          weights_only=trust == WEIGHTS_ONLY, mmap=mmap)
    except Exception as exc:  # truncated zip, not a checkpoint, pickle
        # a real checkpoint holding objects (e.g. mmengine's message hub)
        # is refused naming a global; garbage fails earlier
        if trust == WEIGHTS_ONLY and 'Unsupported global' in str(exc):
            raise CheckpointReadError(
                f'{path}: holds Python objects that weights_only loading '
                'refuses. Only if you trust the file (e.g. a full training '
                'checkpoint of your own), read it with trust=\'trusted\' '
                '(tools: --allow-pickle).') from exc
        # torch's own message starts with advice about weights_only that
        # does not apply to a file that is no checkpoint: quote the cause.
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()
                 and 'weights_only' not in ln and 'torch.load' not in ln]
        cause = lines[0] if lines else type(exc).__name__
        raise CheckpointReadError(
            f'{path}: not a PyTorch checkpoint ({type(exc).__name__}: '
            f'{cause}); expected a file written by torch.save') from exc


def read_checkpoint_meta(path: str) -> dict:
    """The ``meta`` of one of h2crop's own training checkpoints.

    The file is memory-mapped (``torch.load(mmap=True)``), so the tensors
    are not read: asking a large checkpoint for its experiment costs
    milliseconds. Trust level :data:`TRUSTED` (the meta holds Python
    objects); use it for the user's own checkpoints only.

    Returns:
        The meta dict; empty when the file holds none (a bare state dict,
        converted weights).

    Raises:
        FileNotFoundError / CheckpointReadError: As
            :func:`load_checkpoint_file`.
    """
    try:
        obj = load_checkpoint_file(path, trust=TRUSTED, mmap=True)
    except CheckpointReadError:
        # a legacy (non-zip) file cannot be mapped: read it whole
        obj = load_checkpoint_file(path, trust=TRUSTED)
    meta = obj.get('meta') if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


def read_state_dict(path: str,
                    trust: str = WEIGHTS_ONLY,
                    map_location: MapLocation = 'cpu',
                    missing_hint: str = '') -> 'OrderedDict[str, Tensor]':
    """Read a file's tensors with wrappers removed.

    :func:`load_checkpoint_file` followed by :func:`unwrap_state_dict`.

    Args:
        path: Local checkpoint file.
        trust: :data:`WEIGHTS_ONLY` or :data:`TRUSTED`.
        map_location: As for :func:`torch.load`.
        missing_hint: Sentence appended to the error of a missing file.

    Returns:
        Flat name -> tensor mapping without ``state_dict`` / ``module.``.
    """
    obj = load_checkpoint_file(path, trust, map_location, missing_hint)
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj: object, source: str) -> 'OrderedDict[str, Tensor]':
    """A checkpoint's tensors with wrappers removed.

    Accepts a mapping of tensors (numpy arrays are converted), optionally
    under a ``state_dict`` key and with ``module.`` prefixes (DDP).

    Args:
        obj: What ``torch.load`` / ``np.load`` returned.
        source: File name, for messages.

    Raises:
        ValueError: When ``obj`` is not a non-empty mapping of tensors.
    """
    if isinstance(obj, Mapping) and isinstance(obj.get('state_dict'), Mapping):
        obj = obj['state_dict']
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f'{source}: expected a (possibly state_dict-wrapped)'
                         f' mapping of tensors, got {type(obj).__name__}')
    state: OrderedDict[str, Tensor] = OrderedDict()
    for key, value in obj.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(value, Tensor):
            raise ValueError(f'{source}: entry {key!r} is a '
                             f'{type(value).__name__}, expected a tensor')
        while key.startswith('module.'):
            key = key[len('module.'):]
        state[key] = value
    return state
