"""Fidelity check of the whole S2 + EnMAP + prior model (``docs/design.md``, "Reference vectors").

``reference/dualstream`` holds the original implementation's random weights
at tiny width (``h2crop_tiny_state_dict.npz``, original key layout), its
inputs (``h2crop_tiny_inputs.npz``: int16 S2 and EnMAP, uint8 priors) and
its eval-mode outputs (``h2crop_tiny_expected.npz``: logits at stride 4 and
full-resolution argmax maps). ``case.json`` gives the dimensions.
"""
import json
import math
import os.path as osp
from typing import Dict, List

import numpy as np
import torch

from h2crop.constants import ENMAP, LEVELS, PRIOR, S2
from h2crop.taxonomy import load_taxonomy

from h2crop.models.segmentors.h2crop_segmentor import H2CropSegmentor
from h2crop.models.weights.original import load_original_checkpoint

from .swin3d import case_encoder_kwargs
from .utils import find_reference_case_dir

CASE_FILE = 'case.json'
CASE_NAME = 'h2crop_tiny'
#: How case.json states the input scaling (both modalities).
_SCALE_DIVISOR = 3000.0
_EXPECTED_SCALES = {
    'S2': 'float32(S2_int16) / 3000',
    'EnMAP': 'float32(EnMAP_int16) / 3000',
}
#: Minimum agreement of the full-resolution argmax maps.
MIN_ARGMAX_AGREEMENT = 0.999


def build_case_model(case: Dict[str, object],
                     inputs: Dict[str, np.ndarray]) -> H2CropSegmentor:
    """Build the segmentor with the dimensions of ``case.json``.

    Channel counts the case states for the neck and heads are not passed;
    they are derived by the segmentor and checked against the case here.
    """
    s2_case = case['s2_encoder']
    en_case = case['enmap_encoder']
    num_frames = int(inputs['S2_int16'].shape[1])
    enmap_size = int(inputs['EnMAP_int16'].shape[-1])
    s_vit, p_vit = en_case['spatial_vit'], en_case['spectral_vit']
    pooled_side = math.isqrt(int(p_vit['embed_dims']))
    if pooled_side**2 != p_vit['embed_dims'] or enmap_size % pooled_side:
        raise ValueError(f'{CASE_FILE}: spectral embed_dims '
                         f'{p_vit["embed_dims"]} is not a pooled square of '
                         f'the {enmap_size}-px EnMAP grid')
    s2_encoder = dict(type='S2TemporalSwin', **case_encoder_kwargs(s2_case))
    enmap_encoder = dict(
        type='EnMAPSpectralSpatialEncoder',
        img_size=enmap_size,
        upscale=en_case['upsample'],
        spatial_vit=dict(embed_dims=s_vit['embed_dims'],
                         num_heads=s_vit['num_heads'],
                         num_layers=s_vit['num_layers'],
                         mlp_ratio=s_vit['mlp_ratio'],
                         out_channels=s_vit['out_channels']),
        spectral_vit=dict(pool_size=enmap_size // pooled_side,
                          num_heads=p_vit['num_heads'],
                          num_layers=p_vit['num_layers'],
                          mlp_ratio=p_vit['mlp_ratio'],
                          out_channels=p_vit['out_channels']),
        out_channels=en_case['out_channels'])
    model = H2CropSegmentor(
        s2_encoder=s2_encoder,
        enmap_encoder=enmap_encoder,
        neck=dict(type='FusionDecoder'),
        head=dict(type='CascadeHeads'),
        modalities=(S2, ENMAP, PRIOR),
        levels=LEVELS,
        num_frames=num_frames)
    _check_derived(case, model)
    return model


def _check_derived(case: Dict[str, object], model: H2CropSegmentor) -> None:
    """The channel counts the model derived must equal those of the case."""
    neck_case, head_case = case['neck'], case['heads']
    derived = {
        'neck.embed_dims': (model.neck.in_channels, neck_case['embed_dims']),
        'neck.skip_channels_deep_to_shallow':
        (tuple(reversed(model.neck.skip_channels)),
         tuple(neck_case['skip_channels_deep_to_shallow'])),
        'heads.feature_channels': (model.neck.out_channels,
                                   head_case['feature_channels']),
        'heads.head_in_channels': (model.head.head_in_channels,
                                   tuple(head_case['head_in_channels'])),
        'heads.num_classes_with_background':
        (model.head.num_classes,
         tuple(head_case['num_classes_with_background'])),
    }
    for name, (got, want) in derived.items():
        if got != want:
            raise AssertionError(f'{CASE_FILE}: {name} is {want} but the '
                                 f'model derived {got}')


def load_case_inputs(path: str, case: Dict[str, object]
                     ) -> Dict[str, torch.Tensor]:
    """Read the case inputs as the segmentor's ``inputs`` dict."""
    for key, scale in _EXPECTED_SCALES.items():
        if not str(case['input'][key]).startswith(scale):
            raise ValueError(f'{CASE_FILE}: unsupported {key} scaling '
                             f'{case["input"][key]!r}, expected {scale!r}')
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.keys()}
    needed = ['S2_int16', 'EnMAP_int16'] + [f'prior_{lv}' for lv in LEVELS]
    absent = [k for k in needed if k not in arrays]
    if absent:
        raise KeyError(f'{path}: lacks arrays {absent} (has {list(arrays)})')
    prior = np.stack([arrays[f'prior_{lv}'] for lv in LEVELS], axis=1)
    return {
        S2: torch.from_numpy(arrays['S2_int16'].astype(np.float32) /
                             _SCALE_DIVISOR),  # (B, T, C, H, W)
        ENMAP: torch.from_numpy(arrays['EnMAP_int16'].astype(np.float32) /
                                _SCALE_DIVISOR),  # (B, 218, h, w)
        PRIOR: torch.from_numpy(prior.astype(np.int64)),  # (B, L, H, W)
    }


def verify_dualstream_case(reference_dir: str) -> List[Dict[str, object]]:
    """Run the dual-stream reference case and compare with its outputs.

    Args:
        reference_dir: ``shared/reference`` (or its ``dualstream`` folder).

    Returns:
        One dict per expected tensor: for logits ``dict(case, tensor,
        max_abs_err, shape)``; for argmax maps ``dict(case, tensor,
        agreement, shape)`` (fraction of equal pixels).
    """
    folder = find_reference_case_dir(reference_dir, 'dualstream', CASE_FILE)
    with open(osp.join(folder, CASE_FILE)) as f:
        case = json.load(f)
    inputs_path = osp.join(folder, f'{CASE_NAME}_inputs.npz')
    with np.load(inputs_path) as data:
        shapes = {k: data[k] for k in ('S2_int16', 'EnMAP_int16')}
    if load_taxonomy(None).num_classes != tuple(
            case['heads']['num_classes_with_background']):
        raise AssertionError('the default taxonomy does not match the case')
    model = build_case_model(case, shapes)
    load_original_checkpoint(
        model, osp.join(folder, f'{CASE_NAME}_state_dict.npz'))
    inputs = load_case_inputs(inputs_path, case)
    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
    results: List[Dict[str, object]] = []
    with np.load(osp.join(folder, f'{CASE_NAME}_expected.npz')) as data:
        for name in data.keys():
            want = torch.from_numpy(data[name])
            level = name.split('_')[1]
            if level not in logits:
                raise KeyError(f'{CASE_NAME}_expected.npz: {name!r} names no '
                               f'level of the model ({tuple(logits)})')
            if name.endswith('_stride4'):
                got = logits[level][:, :, ::4, ::4]
                err = (float((got - want).abs().max())
                       if got.shape == want.shape else float('inf'))
                results.append(dict(case=CASE_NAME, tensor=name,
                                    max_abs_err=err, shape=tuple(got.shape)))
            elif name.startswith('argmax_'):
                got = logits[level].argmax(dim=1)
                agree = (float((got == want.long()).float().mean())
                         if got.shape == want.shape else 0.0)
                results.append(dict(case=CASE_NAME, tensor=name,
                                    agreement=agree, shape=tuple(got.shape)))
            else:
                raise KeyError(f'{CASE_NAME}_expected.npz: unknown tensor '
                               f'{name!r}')
    return results
