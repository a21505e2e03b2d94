"""Reading checkpoints: the one place where weight files are opened."""
from collections import OrderedDict
from typing import Mapping

import numpy as np
import torch
from torch import Tensor


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
    state: 'OrderedDict[str, Tensor]' = OrderedDict()
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
