"""Small helpers shared by several model files."""
import os.path as osp
from collections import OrderedDict
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor
from mmengine.model.weight_init import trunc_normal_


def init_transformer_weights(module: nn.Module) -> None:
    """ViT / Swin default init of every submodule of ``module``.

    Linear weights trunc_normal(std 0.02) with zero biases; LayerNorm weight
    1, bias 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def find_reference_case_dir(reference_dir: str, subdir: str,
                            marker: str) -> str:
    """Return ``reference_dir`` or ``reference_dir/subdir``, whichever holds
    ``marker`` (a case description file).

    Raises:
        FileNotFoundError: When neither does.
    """
    for candidate in (reference_dir, osp.join(reference_dir, subdir)):
        if osp.isfile(osp.join(candidate, marker)):
            return candidate
    raise FileNotFoundError(
        f'{marker} not found in {reference_dir} or its {subdir}/ folder')


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
