"""Fidelity check of :class:`S2TemporalSwin` against the reference vectors.

``reference/swin3d`` holds, per case, the original implementation's random
weights (``<case>_state_dict.npz``, keys ``patch_emd.*`` / ``backbone.*``),
its input (``<case>_input.npz``, int16 S2 scaled as ``cases.json`` states)
and its eval-mode outputs (``<case>_expected.npz``).
"""
import json
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch

from h2crop.models.backbones.swin3d import S2TemporalSwin
from h2crop.models.weights.agrifm import load_encoder_state_dict

from .utils import find_reference_case_dir

CASES_FILE = 'cases.json'
_INPUT_KEY = 'S2_int16'
_INPUT_SCALE = 'float32(S2_int16) / 3000'
_SCALE_DIVISOR = 3000.0


#: Keys of a case description passed to S2TemporalSwin unchanged.
_ENCODER_KEYS = ('in_channels', 'embed_dims', 'patch_size', 'depths',
                 'num_heads', 'window_size', 'mlp_ratio', 'qkv_bias',
                 'downsample_steps')


#: Keys of a swin3d case that describe its files, not the encoder.
_CASE_KEYS = ('input_shape_BTCHW', 'input_scale', 'outputs')


def case_encoder_kwargs(case: Dict[str, object]) -> Dict[str, object]:
    """S2TemporalSwin arguments of a reference case (no stochastic depth).

    Shared by the swin3d cases and the dual-stream case's S2 encoder; keys a
    case leaves out keep the encoder's defaults.

    Raises:
        ValueError: For a key this builder would not apply.
    """
    unknown = sorted(set(case) - set(_ENCODER_KEYS) - set(_CASE_KEYS))
    if unknown:
        raise ValueError(f'reference case keys {unknown} are not understood;'
                         f' expected encoder keys {_ENCODER_KEYS}')
    kwargs = {key: case[key] for key in _ENCODER_KEYS if key in case}
    kwargs['drop_path_rate'] = 0.
    return kwargs


def build_case_encoder(case: Dict[str, object],
                       rel_pos_index_mode: str = 'original'
                       ) -> S2TemporalSwin:
    """Build the encoder with the dimensions of one ``cases.json`` entry."""
    return S2TemporalSwin(**case_encoder_kwargs(case),
                          num_frames=case['input_shape_BTCHW'][1],
                          rel_pos_index_mode=rel_pos_index_mode)


def load_case_input(path: str, case_name: str,
                    case: Dict[str, object]) -> torch.Tensor:
    """Read a case's input as float32 (B, T, C, H, W)."""
    if case.get('input_scale', _INPUT_SCALE) != _INPUT_SCALE:
        raise ValueError(f'{case_name}: unsupported input_scale '
                         f'{case["input_scale"]!r}, expected {_INPUT_SCALE!r}')
    with np.load(path) as data:
        if _INPUT_KEY not in data:
            raise KeyError(f'{path}: no array {_INPUT_KEY!r} '
                           f'(has {list(data.keys())})')
        raw = data[_INPUT_KEY]
    expected = tuple(case['input_shape_BTCHW'])
    if raw.shape != expected:
        raise ValueError(f'{path}: {_INPUT_KEY} has shape {raw.shape}, '
                         f'cases.json says {expected}')
    return torch.from_numpy(raw.astype(np.float32) / _SCALE_DIVISOR)


def verify_swin3d_cases(reference_dir: str,
                        rel_pos_index_mode: str = 'original',
                        cases: Optional[List[str]] = None
                        ) -> List[Dict[str, object]]:
    """Run every swin3d reference case and compare with the expected tensors.

    Args:
        reference_dir: ``shared/reference`` (or its ``swin3d`` folder).
        rel_pos_index_mode: Passed to the encoder (``'original'``
            reproduces the reference).
        cases: Case names to run (default: all in ``cases.json``).

    Returns:
        One dict(case, tensor, max_abs_err, shape) per expected tensor.
    """
    folder = find_reference_case_dir(reference_dir, 'swin3d', CASES_FILE)
    with open(osp.join(folder, CASES_FILE)) as f:
        all_cases = json.load(f)
    results = []
    for name in cases or list(all_cases):
        case = all_cases[name]
        encoder = build_case_encoder(case, rel_pos_index_mode)
        with np.load(osp.join(folder, f'{name}_state_dict.npz')) as data:
            state = {k: torch.from_numpy(data[k]) for k in data.keys()}
        load_encoder_state_dict(encoder, state)
        x = load_case_input(osp.join(folder, f'{name}_input.npz'), name, case)
        encoder.eval()
        with torch.no_grad():
            out = encoder(x)
        got = {f'features_list_{i}': t
               for i, t in enumerate(out['features_list'])}
        got['encoder_features'] = out['encoder_features']
        with np.load(osp.join(folder, f'{name}_expected.npz')) as data:
            for tensor in data.keys():
                want = torch.from_numpy(data[tensor])
                if tensor not in got:
                    raise KeyError(f'{name}: the encoder has no output '
                                   f'{tensor!r}')
                if got[tensor].shape != want.shape:
                    err = float('inf')
                else:
                    err = float((got[tensor] - want).abs().max())
                results.append(dict(case=name, tensor=tensor,
                                    max_abs_err=err,
                                    shape=tuple(got[tensor].shape)))
    return results
