"""Fidelity check of the whole S2 + EnMAP + prior model.

See ``docs/design.md``, "Reference vectors".

``reference/dualstream`` holds the original implementation's random weights
at tiny width (``h2crop_tiny_state_dict.npz``, original key layout), its
inputs (``h2crop_tiny_inputs.npz``: int16 S2 and EnMAP, uint8 priors) and
its eval-mode outputs (``h2crop_tiny_expected.npz``: logits at stride 4 and
full-resolution argmax maps). ``case.json`` gives the dimensions.
"""
import glob
import json
import math
import os.path as osp
import re
from typing import Dict, List, Tuple

import numpy as np
import torch

from h2crop.constants import ENMAP, LEVELS, PRIOR, S2
from h2crop.models.segmentors.h2crop_segmentor import H2CropSegmentor
from h2crop.models.weights.original import load_original_checkpoint
from h2crop.taxonomy import load_taxonomy

from .swin3d import case_encoder_kwargs
from .utils import find_reference_case_dir

CASE_FILE = 'case.json'
#: Prefix of the case's files when the folder does not say otherwise.
CASE_NAME = 'h2crop_tiny'
#: How case.json states the input scaling (both modalities).
_SCALE_DIVISOR = 3000.0
_EXPECTED_SCALES = {
    'S2': 'float32(S2_int16) / 3000',
    'EnMAP': 'float32(EnMAP_int16) / 3000',
}
#: S2-encoder choices of a case that this implementation has one way of
#: doing: the value it implements.
_FIXED_S2_CHOICES = {'feature_fusion': 'cat', 'mean_frame_down': True}
#: Minimum agreement of the full-resolution argmax maps.
MIN_ARGMAX_AGREEMENT = 0.999


def case_input_shape(case: Dict[str, object], key: str) -> Tuple[int, ...]:
    """Shape of input ``key`` as the case's ``input`` text states it.

    ``"float32(S2_int16) / 3000, shape (B=2, T=6, C=10, 96, 96)"`` gives
    ``(2, 6, 10, 96, 96)``.
    """
    text = str(case['input'].get(key, ''))
    match = re.search(r'shape \(([^)]*)\)', text)
    if not match:
        raise ValueError(f'{CASE_FILE}: input {key!r} states no shape: '
                         f'{text!r}')
    # 'B=2' -> 2; '96' -> 96
    return tuple(int(part.split('=')[-1]) for part in
                 match.group(1).split(','))


def case_modalities(case: Dict[str, object]) -> Tuple[str, ...]:
    """Inputs of the case.

    S2, EnMAP when the case has an EnMAP encoder, the prior when its heads
    take one.
    """
    mods = [S2]
    if case.get('enmap_encoder'):
        mods.append(ENMAP)
    if case['heads'].get('with_prior', False):
        mods.append(PRIOR)
    return tuple(mods)


def case_levels(case: Dict[str, object]) -> Tuple[str, ...]:
    """Levels of the case: ``levels`` if stated, else all four."""
    counts = case['heads']['num_classes_with_background']
    levels = tuple(case.get('levels', LEVELS[:len(counts)]))
    if len(levels) != len(counts) or ('levels' not in case and
                                      len(counts) != len(LEVELS)):
        raise ValueError(f'{CASE_FILE}: {len(counts)} class counts but '
                         f'levels {levels}; state "levels" for a subset')
    return levels


def build_case_model(case: Dict[str, object]) -> H2CropSegmentor:
    """Build the segmentor from ``case.json`` alone.

    Inputs (prior or not, EnMAP or not), levels, the month window and the
    EnMAP grid come from the case's description; channel counts it states
    for the neck and heads are not passed but derived by the segmentor and
    checked against the case here.

    Raises:
        ValueError: For a choice of the case this implementation does not
            have.
        AssertionError: When a derived channel count differs from the case.
    """
    s2_case = dict(case['s2_encoder'])
    for key, value in _FIXED_S2_CHOICES.items():
        if s2_case.pop(key, value) != value:
            raise ValueError(f'{CASE_FILE}: s2_encoder.{key}='
                             f'{case["s2_encoder"][key]!r} is not '
                             f'implemented (only {value!r})')
    modalities = case_modalities(case)
    s2_shape = case_input_shape(case, 'S2')  # (B, T, C, H, W)
    enmap_encoder = None
    if ENMAP in modalities:
        en_case = case['enmap_encoder']
        enmap_size = case_input_shape(case, 'EnMAP')[-1]  # (B, C, h, w)
        s_vit, p_vit = en_case['spatial_vit'], en_case['spectral_vit']
        pooled_side = math.isqrt(int(p_vit['embed_dims']))
        if pooled_side**2 != p_vit['embed_dims'] or \
                enmap_size % pooled_side:
            raise ValueError(f'{CASE_FILE}: spectral embed_dims '
                             f'{p_vit["embed_dims"]} is not a pooled square '
                             f'of the {enmap_size}-px EnMAP grid')
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
        s2_encoder=dict(type='S2TemporalSwin',
                        **case_encoder_kwargs(s2_case)),
        enmap_encoder=enmap_encoder,
        neck=dict(type='FusionDecoder'),
        head=dict(type='CascadeHeads'),
        modalities=modalities,
        levels=case_levels(case),
        num_frames=s2_shape[1])
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
    """Read the case inputs as the segmentor's ``inputs`` dict.

    Only the modalities of the case are read; each array's shape must be
    the one the case states.
    """
    modalities = case_modalities(case)
    levels = case_levels(case)
    stated = {S2: ('S2', 'S2_int16')}
    if ENMAP in modalities:
        stated[ENMAP] = ('EnMAP', 'EnMAP_int16')
    for key, _array in stated.values():
        scale = _EXPECTED_SCALES[key]
        if not str(case['input'][key]).startswith(scale):
            raise ValueError(f'{CASE_FILE}: unsupported {key} scaling '
                             f'{case["input"][key]!r}, expected {scale!r}')
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.keys()}
    needed = [array for _, array in stated.values()]
    if PRIOR in modalities:
        needed += [f'prior_{lv}' for lv in levels]
    absent = [k for k in needed if k not in arrays]
    if absent:
        raise KeyError(f'{path}: lacks arrays {absent} (has {list(arrays)})')
    inputs = {}
    for mod, (key, array) in stated.items():
        shape = case_input_shape(case, key)
        if arrays[array].shape != shape:
            raise ValueError(f'{path}: {array} has shape '
                             f'{arrays[array].shape}, {CASE_FILE} says '
                             f'{shape}')
        # S2 (B, T, C, H, W), EnMAP (B, 218, h, w)
        inputs[mod] = torch.from_numpy(arrays[array].astype(np.float32) /
                                       _SCALE_DIVISOR)
    if PRIOR in modalities:
        # L x (B, H, W) -> (B, L, H, W)
        prior = np.stack([arrays[f'prior_{lv}'] for lv in levels], axis=1)
        inputs[PRIOR] = torch.from_numpy(prior.astype(np.int64))
    return inputs


def case_name_of(folder: str) -> str:
    """File prefix of the case in ``folder`` (``<name>_state_dict.npz``)."""
    found = sorted(glob.glob(osp.join(folder, '*_state_dict.npz')))
    if len(found) == 1:
        return osp.basename(found[0])[:-len('_state_dict.npz')]
    if not found:
        raise FileNotFoundError(f'{folder}: no <case>_state_dict.npz')
    raise ValueError(f'{folder}: several state dicts {found}; expected one '
                     'case per folder')


def verify_dualstream_case(reference_dir: str) -> List[Dict[str, object]]:
    """Run the dual-stream reference case and compare with its outputs.

    Args:
        reference_dir: ``shared/reference`` (or its ``dualstream`` folder).

    Returns:
        One dict per expected tensor: for logits ``dict(case, tensor,
        max_abs_err, shape)`` (``logits_<level>_stride<s>`` is compared
        with ``logits[:, :, ::s, ::s]``); for argmax maps ``dict(case,
        tensor, agreement, shape)`` (fraction of equal pixels).
    """
    folder = find_reference_case_dir(reference_dir, 'dualstream', CASE_FILE)
    with open(osp.join(folder, CASE_FILE)) as f:
        case = json.load(f)
    name = case_name_of(folder)
    levels = case_levels(case)
    taxonomy = load_taxonomy(None)
    counts = tuple(taxonomy.num_classes[LEVELS.index(lv)] for lv in levels)
    if counts != tuple(case['heads']['num_classes_with_background']):
        raise AssertionError('the default taxonomy does not match the case')
    model = build_case_model(case)
    load_original_checkpoint(model,
                             osp.join(folder, f'{name}_state_dict.npz'))
    inputs = load_case_inputs(osp.join(folder, f'{name}_inputs.npz'), case)
    model.eval()
    with torch.no_grad():
        logits = model(inputs, mode='tensor')
    results: List[Dict[str, object]] = []
    with np.load(osp.join(folder, f'{name}_expected.npz')) as data:
        for tensor in data.keys():
            want = torch.from_numpy(data[tensor])
            level = tensor.split('_')[1]
            if level not in logits:
                raise KeyError(f'{name}_expected.npz: {tensor!r} names no '
                               f'level of the model ({tuple(logits)})')
            stride = re.fullmatch(r'logits_\w+?_stride(\d+)', tensor)
            if stride:
                step = int(stride.group(1))
                got = logits[level][:, :, ::step, ::step]
                err = (float((got - want).abs().max())
                       if got.shape == want.shape else float('inf'))
                results.append(dict(case=name, tensor=tensor,
                                    max_abs_err=err, shape=tuple(got.shape)))
            elif tensor.startswith('argmax_'):
                got = logits[level].argmax(dim=1)
                agree = (float((got == want.long()).float().mean())
                         if got.shape == want.shape else 0.0)
                results.append(dict(case=name, tensor=tensor,
                                    agreement=agree, shape=tuple(got.shape)))
            else:
                raise KeyError(f'{name}_expected.npz: unknown tensor '
                               f'{tensor!r}')
    return results
