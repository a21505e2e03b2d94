"""AgriFM pretrained weights for :class:`S2TemporalSwin`.

See ``docs/design.md``, "Pretrained weights".

The released ``AgriFM.pth`` stores ``encoder.S2_patch_emd.*`` (a temporal
patch kernel of 4, ours is 2), other sensors' patch embeddings
(``encoder.HLSL30_patch_emd.*``, ``encoder.Modis_patch_emd.*``) and the shared
``encoder.backbone.*``, possibly wrapped in ``state_dict`` and prefixed
``module.``. This module maps that layout explicitly onto our keys, reports
what was loaded / missing / skipped, fails loudly when the backbone does not
load completely and applies an explicit patch-kernel policy:

* ``'reinit'``: keep the fresh initialisation of the patch embedding (what the
  original effectively trained with, its silent loader never loaded it);
* ``'fold'``: sum groups of consecutive temporal taps (4 -> 2: taps 0+1 and
  2+3), so that a constant-in-time input gives the same response.

Weights are never downloaded: the user places the file under ``checkpoints/``.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from h2crop.registry import WEIGHT_INITIALIZERS

from .io import WEIGHTS_ONLY, read_state_dict

PATCH_KERNEL_POLICIES = ('reinit', 'fold')
PATCH_WEIGHT = 'patch_emd.proj.weight'
PATCH_BIAS = 'patch_emd.proj.bias'
BACKBONE_PREFIX = 'backbone.'
SOURCE_SENSOR = 'S2'
# Tensors of the file that are recomputed, never loaded.
_BUFFER_SUFFIXES = ('relative_position_index', 'attn_mask')
# encoder.<Sensor>_patch_emd.<rest>
_SENSOR_PATCH = re.compile(r'^encoder\.(?P<sensor>[A-Za-z0-9]+)_patch_emd\.'
                           r'(?P<rest>.+)$')
_PATCH_PARAM = {
    'weights': 'weight', 'weight': 'weight', 'proj.weight': 'weight',
    'bias': 'bias', 'proj.bias': 'bias'
}

StateDict = Dict[str, torch.Tensor]
#: What to do when the AgriFM file is missing.
AGRIFM_MISSING_HINT = (
    'h2crop never downloads weights: download AgriFM.pth yourself (see the '
    'AgriFM README, github.com/flyakon/AgriFM) and place it under '
    'checkpoints/ (e.g. checkpoints/AgriFM.pth), or set '
    'init_cfg.checkpoint.')


def _logger(logger: Optional[MMLogger]) -> MMLogger:
    return logger if logger is not None else \
        MMLogger.get_current_instance()


def read_checkpoint(path: str) -> StateDict:
    """Read AgriFM weights (``weights_only``) and unwrap them.

    Args:
        path: File written by ``torch.save``.

    Returns:
        Flat name -> tensor mapping with the ``module.`` prefixes removed.

    Raises:
        FileNotFoundError: ``path`` does not exist (weights are never
            downloaded; place ``AgriFM.pth`` under ``checkpoints/``).
        CheckpointReadError: The file is not a readable checkpoint.
        ValueError: The file holds no state dict of tensors.
    """
    return read_state_dict(path, trust=WEIGHTS_ONLY,
                           missing_hint=AGRIFM_MISSING_HINT)


def map_agrifm_state_dict(state: StateDict) -> Tuple[StateDict,
                                                     Dict[str, List[str]]]:
    """Map an AgriFM (or already converted) state dict onto our key layout.

    Accepted source keys: ``encoder.S2_patch_emd.{weights,weight,proj.weight,
    bias,proj.bias}`` -> ``patch_emd.proj.{weight,bias}``,
    ``encoder.backbone.*`` -> ``backbone.*``, and our own ``patch_emd.proj.*``
    / ``backbone.*`` unchanged. ``relative_position_index`` / ``attn_mask``
    buffers are recomputed and dropped.

    Args:
        state: Flat state dict, ``module.`` already removed.

    Returns:
        The mapped state dict and the dropped keys by reason:
        ``other_sensors`` (patch embeddings of HLSL30, Modis, ...),
        ``buffers`` (recomputed index buffers) and ``unrecognised``.
    """
    mapped: StateDict = OrderedDict()
    dropped: Dict[str, List[str]] = dict(other_sensors=[], buffers=[],
                                         unrecognised=[])
    for key, value in state.items():
        if key.rsplit('.', 1)[-1] in _BUFFER_SUFFIXES:
            dropped['buffers'].append(key)
            continue
        sensor = _SENSOR_PATCH.match(key)
        if sensor is not None:
            param = _PATCH_PARAM.get(sensor.group('rest'))
            if sensor.group('sensor') != SOURCE_SENSOR:
                dropped['other_sensors'].append(key)
            elif param is None:
                dropped['unrecognised'].append(key)
            else:
                mapped[f'patch_emd.proj.{param}'] = value
        elif key.startswith('encoder.backbone.'):
            mapped[key[len('encoder.'):]] = value
        elif key.startswith(BACKBONE_PREFIX) or key in (PATCH_WEIGHT,
                                                        PATCH_BIAS):
            mapped[key] = value
        else:
            dropped['unrecognised'].append(key)
    return mapped, dropped


def fold_patch_kernel(weight: torch.Tensor,
                      target_shape: Tuple[int, ...]) -> torch.Tensor:
    """Sum groups of consecutive temporal taps of a Conv3d kernel.

    Args:
        weight: (O, I, Ts, H, W) stored kernel.
        target_shape: (O, I, Tt, H, W) with Ts a multiple of Tt.

    Returns:
        (O, I, Tt, H, W); tap t of the result is the sum of stored taps
        t*k .. t*k + k-1 with k = Ts / Tt (4 -> 2: 0+1, 2+3).
    """
    target_shape = tuple(target_shape)
    if (weight.dim() != 5 or len(target_shape) != 5
            or weight.shape[:2] != target_shape[:2]
            or weight.shape[3:] != target_shape[3:]
            or weight.shape[2] % target_shape[2]):
        raise ValueError(
            f"patch_kernel_policy='fold' needs a stored kernel (O, I, k*T, H, "
            f'W) for ours {target_shape}; got {tuple(weight.shape)}')
    k = weight.shape[2] // target_shape[2]
    o, i, _, h, w = weight.shape
    grouped = weight.reshape(o, i, target_shape[2], k, h, w)
    return grouped.sum(dim=3)  # (O, I, Tt, H, W)


def find_encoder(model: nn.Module) -> nn.Module:
    """Return the single :class:`S2TemporalSwin` in ``model`` (or itself)."""
    from ..backbones.swin3d import S2TemporalSwin
    if isinstance(model, S2TemporalSwin):
        return model
    found = [m for m in model.modules() if isinstance(m, S2TemporalSwin)]
    if len(found) != 1:
        raise ValueError(f'expected exactly one S2TemporalSwin in '
                         f'{type(model).__name__}, found {len(found)}')
    return found[0]


def load_mapped_state_dict(encoder: nn.Module, mapped: StateDict,
                           patch_kernel_policy: str = 'reinit',
                           strict_backbone: bool = True,
                           source: str = '<state dict>',
                           logger: Optional[MMLogger] = None) -> dict:
    """Load a state dict in our layout into an encoder, with checks.

    Args:
        encoder: :class:`S2TemporalSwin` (or a model holding exactly one).
        mapped: Keys ``patch_emd.proj.*`` / ``backbone.*``.
        patch_kernel_policy: ``'reinit'`` or ``'fold'`` when the stored patch
            kernel's shape differs from ours.
        strict_backbone: Raise unless every ``backbone.*`` tensor loads.
        source: Name of the source for messages.
        logger: Logger (default: the current MMLogger).

    Returns:
        dict(loaded=int, missing=list[str], mismatched=list[str],
        unexpected=list[str], patch_embed=str, patch_kernel_policy=str).

    Raises:
        RuntimeError: Backbone tensors missing or of the wrong shape
            (``strict_backbone``), or the patch embedding has a shape that
            the policy cannot handle.
    """
    if patch_kernel_policy not in PATCH_KERNEL_POLICIES:
        raise ValueError(f'patch_kernel_policy must be one of '
                         f'{PATCH_KERNEL_POLICIES}, got '
                         f'{patch_kernel_policy!r}')
    log = _logger(logger)
    encoder = find_encoder(encoder)
    own = encoder.state_dict()
    to_load: StateDict = OrderedDict()
    missing = [k for k in own if k not in mapped]
    unexpected = [k for k in mapped if k not in own]
    mismatched = []
    patch_embed = 'missing' if PATCH_WEIGHT in missing else 'loaded'
    for key, value in mapped.items():
        if key not in own:
            continue
        if value.shape == own[key].shape:
            to_load[key] = value
        elif key == PATCH_WEIGHT and patch_kernel_policy == 'fold':
            to_load[key] = fold_patch_kernel(value, tuple(own[key].shape))
            patch_embed = 'fold'
            log.info(f'AgriFM patch kernel {tuple(value.shape)} folded to '
                     f"{tuple(own[key].shape)} (policy 'fold': sums of "
                     'consecutive temporal taps)')
        elif key == PATCH_WEIGHT:
            patch_embed = 'reinit'
            log.warning(f'AgriFM patch kernel {tuple(value.shape)} does not '
                        f'fit ours {tuple(own[key].shape)}: keeping the fresh '
                        "initialisation of patch_emd (policy 'reinit')")
        else:
            mismatched.append(key)
    if patch_embed == 'reinit':
        # The bias belongs to the re-initialised kernel: keep it fresh too.
        to_load.pop(PATCH_BIAS, None)
    bad_backbone = [k for k in missing + mismatched
                    if k.startswith(BACKBONE_PREFIX)]
    other_bad = [k for k in mismatched if not k.startswith(BACKBONE_PREFIX)]
    if other_bad:
        raise RuntimeError(f'{source}: shape mismatch for {other_bad}')
    if bad_backbone:
        details = [
            f'{k}: file {tuple(mapped[k].shape)} vs model '
            f'{tuple(own[k].shape)}' if k in mapped else f'{k}: absent'
            for k in bad_backbone
        ]
        msg = (f'{source}: {len(bad_backbone)} of '
               f'{sum(k.startswith(BACKBONE_PREFIX) for k in own)} backbone '
               'tensors cannot be loaded (wrong architecture or not an '
               'AgriFM file?): ' + '; '.join(details[:10]) +
               (' ...' if len(details) > 10 else ''))
        if strict_backbone:
            raise RuntimeError(msg)
        log.warning(msg)
    encoder.load_state_dict(to_load, strict=False)
    missing_now = [k for k in own if k not in to_load]
    if unexpected:
        log.warning(f'{source}: {len(unexpected)} keys of our layout do not '
                    f'exist in the model: {unexpected[:10]}')
    return dict(loaded=len(to_load), missing=missing_now,
                mismatched=mismatched, unexpected=unexpected,
                patch_embed=patch_embed,
                patch_kernel_policy=patch_kernel_policy)


def load_agrifm_weights(model_or_encoder: nn.Module,
                        path: str,
                        patch_kernel_policy: str = 'reinit',
                        strict_backbone: bool = True,
                        logger: Optional[MMLogger] = None) -> dict:
    """Load AgriFM weights (released or converted layout) into the encoder.

    Args:
        model_or_encoder: :class:`S2TemporalSwin` or a model holding one.
        path: ``AgriFM.pth`` or a file written by
            ``tools/model_converters/agrifm2h2crop.py``.
        patch_kernel_policy: ``'reinit'`` (default, paper-effective) or
            ``'fold'`` for a stored patch kernel of another temporal size.
        strict_backbone: Raise unless every backbone tensor loads.
        logger: Logger (default: the current MMLogger).

    Returns:
        Report dict(path, loaded, missing, skipped=dict(other_sensors=int,
        buffers=int, unrecognised=int), mismatched, unexpected, patch_embed
        ('loaded' | 'reinit' | 'fold' | 'missing'), patch_kernel_policy).

    Raises:
        FileNotFoundError: No file at ``path``.
        RuntimeError: The backbone cannot be mapped completely.
    """
    log = _logger(logger)
    state = read_checkpoint(path)
    mapped, dropped = map_agrifm_state_dict(state)
    if not any(k.startswith(BACKBONE_PREFIX) for k in mapped):
        raise RuntimeError(
            f'{path}: no backbone tensors found (expected keys '
            "'encoder.backbone.*' or 'backbone.*'); first keys: "
            f'{list(state)[:5]}')
    report = load_mapped_state_dict(
        model_or_encoder, mapped, patch_kernel_policy=patch_kernel_policy,
        strict_backbone=strict_backbone, source=path, logger=log)
    report['path'] = path
    report['skipped'] = {k: len(v) for k, v in dropped.items()}
    if dropped['unrecognised']:
        log.warning(f'{path}: skipped {len(dropped["unrecognised"])} '
                    f'unrecognised keys, e.g. {dropped["unrecognised"][:5]}')
    sensors = sorted({k.split('_patch_emd')[0].split('.')[-1]
                      for k in dropped['other_sensors']})
    log.info(
        f'AgriFM weights from {path}: loaded {report["loaded"]} tensors, '
        f'missing {len(report["missing"])} '
        f'({", ".join(report["missing"]) or "none"}), skipped '
        f'{report["skipped"]["other_sensors"]} other-sensor tensors '
        f'({", ".join(sensors) or "none"}), '
        f'{report["skipped"]["buffers"]} index buffers, '
        f'{report["skipped"]["unrecognised"]} unrecognised; patch embedding: '
        f'{report["patch_embed"]} (policy {patch_kernel_policy!r})')
    return report


@WEIGHT_INITIALIZERS.register_module(name='AgriFM')
class AgriFMInit:
    """``init_cfg`` initializer: ``dict(type='AgriFM', checkpoint=...)``.

    Args:
        checkpoint: Path of ``AgriFM.pth`` (or a converted file).
        patch_kernel_policy: ``'reinit'`` or ``'fold'``.
        strict_backbone: Raise unless every backbone tensor loads.
    """

    def __init__(self, checkpoint: str = 'checkpoints/AgriFM.pth',
                 patch_kernel_policy: str = 'reinit',
                 strict_backbone: bool = True) -> None:
        if patch_kernel_policy not in PATCH_KERNEL_POLICIES:
            raise ValueError(f'patch_kernel_policy must be one of '
                             f'{PATCH_KERNEL_POLICIES}, got '
                             f'{patch_kernel_policy!r}')
        self.checkpoint = checkpoint
        self.patch_kernel_policy = patch_kernel_policy
        self.strict_backbone = strict_backbone

    def __call__(self, module: nn.Module) -> dict:
        """Load the checkpoint into ``module``.

        Args:
            module: :class:`S2TemporalSwin` (or a model holding exactly one).

        Returns:
            The report of :func:`load_agrifm_weights`.
        """
        return load_agrifm_weights(
            module, self.checkpoint,
            patch_kernel_policy=self.patch_kernel_policy,
            strict_backbone=self.strict_backbone)

    def __repr__(self) -> str:
        return (f'AgriFMInit(checkpoint={self.checkpoint!r}, '
                f'patch_kernel_policy={self.patch_kernel_policy!r})')


def load_encoder_state_dict(encoder: nn.Module,
                            state: Union[StateDict, Dict[str, object]],
                            logger: Optional[MMLogger] = None) -> dict:
    """Strictly load an in-memory state dict (AgriFM or our layout).

    Every learnable tensor of the encoder must be present with its shape
    (the patch kernel included); index buffers in ``state`` are ignored.

    Args:
        encoder: :class:`S2TemporalSwin` (or a model holding exactly one).
        state: Name -> tensor (or numpy array).
        logger: Logger (default: the current MMLogger).

    Returns:
        The report of :func:`load_mapped_state_dict`.
    """
    tensors = OrderedDict(
        (k, v if isinstance(v, torch.Tensor) else torch.as_tensor(v))
        for k, v in state.items())
    mapped, dropped = map_agrifm_state_dict(tensors)
    extra = dropped['unrecognised'] + dropped['other_sensors']
    if extra:
        raise RuntimeError(f'unexpected keys in the state dict: {extra}')
    report = load_mapped_state_dict(encoder, mapped, strict_backbone=True,
                                    logger=logger)
    if report['missing'] or report['patch_embed'] != 'loaded' or \
            report['unexpected']:
        raise RuntimeError(
            f'state dict does not match the encoder: missing '
            f'{report["missing"]}, unexpected {report["unexpected"]}, patch '
            f'embedding {report["patch_embed"]}')
    return report
