"""Parameter and FLOP counting, dummy inputs and model building for tools.

Used by ``tools/analysis_tools/get_flops.py`` and
``tools/analysis_tools/benchmark_model.py``. Nothing here loads weights:
``init_weights()`` (which reads ``checkpoints/AgriFM.pth``) is never called.

FLOP convention: :func:`forward_flops` counts with
:class:`torch.utils.flop_counter.FlopCounterMode`, which charges
``2 * multiply-adds`` for matrix products, convolutions and scaled
dot-product attention (elementwise ops, norms, softmax and interpolation
are not counted). Attention runs on PyTorch's math backend while counting,
so its two matrix products are counted the same on every device and torch
release (fused CPU kernels are invisible to some releases' counter). This
is the convention of the paper's "about 1.02 TFLOP per tile" for S2 + EnMAP
+ prior (June).
"""
import copy
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from h2crop.constants import (
    ENMAP,
    ENMAP_BANDS,
    ENMAP_SCALE,
    LEVELS,
    PRIOR,
    S2,
    S2_BANDS,
    TILE_SIZE,
)
from h2crop.engine.experiment import resolve_experiment
from h2crop.engine.option_check import merge_checked
from h2crop.taxonomy import load_taxonomy

#: Keys of the model config read by :func:`dummy_inputs`.
_MODEL_KEYS = ('modalities', 'levels', 'num_frames', 'taxonomy')


def _model_dict(cfg_model: Union[dict, ConfigDict]) -> dict:
    """A plain ``dict`` copy of a model config."""
    if isinstance(cfg_model, ConfigDict):
        return cfg_model.to_dict()
    return copy.deepcopy(dict(cfg_model))


def load_model_config(config: Union[str, Config],
                      cfg_options: Optional[dict] = None) -> Config:
    """Load and resolve a config; fall back to the paper's taxonomy.

    ``model.taxonomy`` (and nothing else) is set to None when the file it
    names does not exist, so paper configs can be analysed without the
    dataset; the class counts then are the paper's.

    Args:
        config: Path of a config file or a loaded :class:`Config`.
        cfg_options: ``--cfg-options`` overrides merged before the check.

    Returns:
        The config (a new object when ``config`` is a path).
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    cfg = merge_checked(cfg, cfg_options)
    if 'data_root' in cfg:  # an experiment config: derive the model fields
        cfg = resolve_experiment(cfg)
    if 'model' not in cfg:
        raise KeyError(f'config {getattr(cfg, "filename", config)} has no '
                       '`model` entry')
    taxonomy = cfg.model.get('taxonomy')
    if taxonomy is not None and not osp.isfile(taxonomy):
        print_log(f'taxonomy file {taxonomy} of model.taxonomy not found; '
                  "using the paper's class counts (taxonomy=None)",
                  logger='current')
        cfg.model.taxonomy = None
    return cfg


def build_model_from_cfg(cfg: Config,
                         device: Union[str, torch.device] = 'cpu'
                         ) -> nn.Module:
    """Build ``cfg.model`` (registries of h2crop) without loading weights.

    With ``device='meta'`` parameters are created without storage (fast, no
    memory); the data preprocessor, whose constructor inspects values, is
    built on the CPU first and passed in as a module.

    Args:
        cfg: Config from :func:`load_model_config`.
        device: Device on which parameters are created.

    Returns:
        The model; ``init_weights()`` has NOT been called.
    """
    from h2crop.registry import MODELS
    from h2crop.utils import register_all_modules

    register_all_modules()
    model_cfg = _model_dict(cfg.model)
    preprocessor = model_cfg.get('data_preprocessor')
    if isinstance(preprocessor, dict):
        model_cfg['data_preprocessor'] = MODELS.build(preprocessor)
    with torch.device(device):
        model = MODELS.build(model_cfg)
    if torch.device(device).type == 'meta':
        # Buffers made from Python values inside constructors may still be
        # on the CPU; keep the whole model on one device.
        model = model.to(device)
    return model


def count_parameters(model: nn.Module) -> Dict[str, object]:
    """Count parameters (works on meta-device models).

    Args:
        model: Any module.

    Returns:
        ``dict(total=int, trainable=int, per_module=OrderedDict(name -> int))``
        where ``per_module`` has one entry per top-level child module (those
        with no parameters included, as 0) and ``'(own)'`` for parameters
        held directly by ``model``, when there are any.
    """
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    per_module: OrderedDict[str, int] = OrderedDict()
    for name, child in model.named_children():
        per_module[name] = sum(p.numel() for p in child.parameters())
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        per_module['(own)'] = own
    return dict(total=total, trainable=trainable, per_module=per_module)


def forward_flops(model: nn.Module,
                  inputs: Dict[str, torch.Tensor],
                  mode: str = 'tensor') -> Tuple[int, 'OrderedDict[str, int]']:
    """Forward FLOPs (``2 * multiply-adds``) of one call in eval mode.

    Args:
        model: The segmentor (on the device of ``inputs``; ``meta`` works
            when every op of the forward supports it).
        inputs: Preprocessed inputs, e.g. from :func:`dummy_inputs`.
        mode: ``forward`` mode passed to the model.

    Returns:
        ``(total, per_module)`` with ``per_module`` mapping each top-level
        child module name to its FLOPs (0 for children not run).
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, depth=2)
    try:
        # The math backend of scaled_dot_product_attention runs as matrix
        # products on every device; fused CPU kernels are not counted by
        # every torch release's FlopCounterMode, meta tensors always take
        # the math path. Forcing it makes the count device- and
        # version-independent (2 * (QK^T + AV) multiply-adds).
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
            model(inputs, mode=mode)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    per_module: OrderedDict[str, int] = OrderedDict()
    for name, _ in model.named_children():
        per_module[name] = int(sum(counts.get(f'{root}.{name}', {}).values()))
    return int(counter.get_total_flops()), per_module


def _model_choices(cfg_model: Union[dict, ConfigDict]
                   ) -> Tuple[Tuple[str, ...], Tuple[str, ...], int, list]:
    """(modalities, levels, num_frames, classes per level) of a config."""
    missing = [k for k in ('modalities', 'levels', 'num_frames')
               if k not in cfg_model]
    if missing:
        raise KeyError(f'model config lacks {missing}; expected the keys '
                       f'{_MODEL_KEYS} of H2CropSegmentor')
    modalities = tuple(cfg_model['modalities'])
    levels = tuple(cfg_model['levels'])
    taxonomy = load_taxonomy(cfg_model.get('taxonomy'))
    num_classes = [taxonomy.num_classes[LEVELS.index(lv)] for lv in levels]
    return modalities, levels, int(cfg_model['num_frames']), num_classes


def dummy_inputs(cfg_model: Union[dict, ConfigDict],
                 tile_size: int = TILE_SIZE,
                 batch: int = 1,
                 device: Union[str, torch.device] = 'cpu',
                 seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random inputs shaped like the output of the data preprocessor.

    Args:
        cfg_model: Model config with ``modalities``, ``levels``,
            ``num_frames`` and ``taxonomy`` (path or None).
        tile_size: S2 tile side H = W (multiple of 3 when EnMAP is used).
        batch: Batch size B.
        device: Device of the tensors (``meta``: shapes only).
        seed: Seed of the random values.

    Returns:
        ``{'s2': float32 (B, T, 10, H, W), 'enmap': float32
        (B, 218, H/3, W/3), 'prior': int64 (B, L, H, W)}`` restricted to the
        model's modalities; prior ids lie in ``0..N_k`` per level.
    """
    modalities, _, num_frames, num_classes = _model_choices(cfg_model)
    if ENMAP in modalities and tile_size % ENMAP_SCALE:
        raise ValueError(f'tile_size {tile_size} must be a multiple of '
                         f'{ENMAP_SCALE} for the EnMAP grid')
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    side = tile_size // ENMAP_SCALE
    shapes = {
        S2: (batch, num_frames, S2_BANDS, tile_size, tile_size),
        ENMAP: (batch, ENMAP_BANDS, side, side),
    }
    inputs: Dict[str, torch.Tensor] = {}
    for key in (S2, ENMAP):
        if key not in modalities:
            continue
        if device.type == 'meta':
            inputs[key] = torch.empty(shapes[key], device=device)
        else:
            inputs[key] = torch.randn(shapes[key], generator=gen).to(device)
    if PRIOR in modalities:
        if device.type == 'meta':
            inputs[PRIOR] = torch.empty(
                (batch, len(num_classes), tile_size, tile_size),
                dtype=torch.long, device=device)
        else:
            inputs[PRIOR] = _random_ids(num_classes, batch, tile_size,
                                        gen).to(device)
    return inputs


def _random_ids(num_classes: List[int], batch: int, tile_size: int,
                gen: torch.Generator) -> torch.Tensor:
    """int64 (B, L, H, W) with level l drawn from ``0..num_classes[l]-1``."""
    rows = [
        torch.randint(0, n, (batch, 1, tile_size, tile_size), generator=gen)
        for n in num_classes
    ]
    return torch.cat(rows, dim=1)  # (B, L, H, W)


def dummy_data_samples(cfg_model: Union[dict, ConfigDict],
                       tile_size: int = TILE_SIZE,
                       batch: int = 1,
                       device: Union[str, torch.device] = 'cpu',
                       seed: int = 1) -> List[SegDataSample]:
    """Samples with random ``gt_sem_seg`` int64 (L, H, W) for ``mode='loss'``.

    Args:
        cfg_model: Model config (see :func:`dummy_inputs`).
        tile_size: Tile side H = W.
        batch: Number of samples.
        device: Device of the labels.
        seed: Seed of the random labels.
    """
    _, levels, num_frames, num_classes = _model_choices(cfg_model)
    gen = torch.Generator().manual_seed(seed)
    labels = _random_ids(num_classes, batch, tile_size, gen).to(device)
    samples = []
    for i in range(batch):
        sample = SegDataSample(metainfo=dict(
            levels=levels, end_month=num_frames,
            ori_shape=(tile_size, tile_size),
            img_shape=(tile_size, tile_size)))
        sample.gt_sem_seg = PixelData(data=labels[i])  # (L, H, W)
        samples.append(sample)
    return samples
