"""Load a trained model and map tiles with it from Python.

Example::

    from h2crop.apis import init_model, inference_model
    model = init_model('configs/demo/h2crop_demo_s2_h_p.py',
                       'work_dirs/demo/best_mFscore_epoch_12.pth')
    # or from the checkpoint alone (its config and experiment travel with it)
    model = init_model(checkpoint='work_dirs/demo/best_mFscore_epoch_12.pth')
    result = inference_model(model, s2, enmap, prior)   # raw int16 / uint8
    result['pred']        # (L, H, W) uint8 class ids per level
    result['confidence']  # (L, H, W) float32 probability of the chosen class
"""
import copy
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config

from h2crop.constants import ENMAP, ENMAP_SCALE, LEVELS, NUM_LEVELS, PRIOR, S2
from h2crop.engine.checkpoint_experiment import (
    check_any_window_maximum,
    provenance,
    reconcile_experiment,
    record_of_meta,
)
from h2crop.engine.experiment import resolve_experiment
from h2crop.engine.option_check import merge_checked
from h2crop.models.weights.io import (
    TRUSTED,
    load_checkpoint_file,
    unwrap_state_dict,
)

ArrayLike = Union[np.ndarray, torch.Tensor]


def resolve_inference_cfg(config: Union[str, Config],
                          cfg_options: Optional[dict] = None,
                          record: Optional[Mapping[str, Any]] = None,
                          checkpoint: Optional[str] = None,
                          allow_experiment_mismatch: bool = False
                          ) -> Config:
    """Load a config for inference: overrides applied, no pretrained files.

    ``--cfg-options`` style overrides are merged; with a checkpoint, its
    experiment record fills the choices the config does not state and
    refuses those that contradict it
    (:func:`~h2crop.engine.checkpoint_experiment.reconcile_experiment`);
    then the experiment's choices are derived everywhere
    (:func:`~h2crop.engine.experiment.resolve_experiment`, as for training
    and testing), and every ``init_cfg`` that would read pretrained weights
    (AgriFM.pth) is removed: the checkpoint supplies all weights.

    Args:
        config: Config file or loaded config (copied, not changed).
        cfg_options: Overrides, e.g. ``{'model.test_cfg.mode': 'slide'}``.
        record: The checkpoint's experiment record (None: none checked).
        checkpoint: The checkpoint's path (for messages); None when no
            checkpoint is reconciled.
        allow_experiment_mismatch: Keep contradicting choices of the
            config, with a warning.

    Raises:
        ExperimentConfigError: Invalid choices, or (a subclass) choices
            that contradict the checkpoint's.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else \
        copy.deepcopy(config)
    cfg = merge_checked(cfg, cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'config {getattr(cfg, "filename", config)} has no '
                       '`model` entry')
    if checkpoint is not None:
        cfg = reconcile_experiment(cfg, record, checkpoint, mode='infer',
                                   allow_mismatch=allow_experiment_mismatch)
    cfg = resolve_experiment(cfg)
    if checkpoint is not None and not allow_experiment_mismatch:
        check_any_window_maximum(cfg, record, checkpoint)
    cfg.model.init_cfg = None
    for part in ('s2_encoder', 'enmap_encoder'):
        if isinstance(cfg.model.get(part), dict):
            cfg.model[part].init_cfg = None
    return cfg


def checkpoint_config(checkpoint: str, meta: Mapping[str, Any]) -> Config:
    """The config a training checkpoint was written with.

    mmengine stores the run's config text in every checkpoint's meta; its
    data paths (those of the training machine) are not used for mapping,
    and the taxonomy comes from the experiment record instead of a path.

    Raises:
        ValueError: When the checkpoint carries no config (older or
            converted checkpoints): the message says to give one.
    """
    text = meta.get('cfg') if isinstance(meta, Mapping) else None
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f'{checkpoint} carries no config (a converted or '
                         'bare-weights checkpoint): give the config too '
                         '(tools/infer.py CONFIG CKPT)')
    cfg = Config.fromstring(text, file_format='.py')
    if record_of_meta(meta) is not None:
        cfg.pop('taxonomy', None)  # the record carries the table itself
    return cfg


def init_model(config: Union[str, Config, None] = None,
               checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None,
               allow_experiment_mismatch: bool = False) -> torch.nn.Module:
    """Build a model from a config and/or a checkpoint and load its weights.

    With a checkpoint written by h2crop's training, the experiment it was
    trained in (taxonomy table, band statistics, window, inputs, levels)
    comes with it: choices the config does not state are taken from the
    checkpoint and contradicting ones are refused. ``config=None`` builds
    the model from the checkpoint alone (its stored config and record).

    Args:
        config: Config file or loaded config; None to use the checkpoint's.
        checkpoint: A checkpoint written by h2crop's training (its
            ``state_dict`` is loaded strictly); None keeps freshly
            initialised weights.
        device: Device of the model.
        cfg_options: Config overrides (see :func:`resolve_inference_cfg`),
            e.g. ``{'model.test_cfg.decode': 'consistent'}``.
        allow_experiment_mismatch: Use the config's choices where they
            contradict the checkpoint's, with a warning.

    Returns:
        The model in eval mode, with ``model.cfg`` the config used and
        ``model.provenance`` what maps state about it (checkpoint, config,
        taxonomy digest; see
        :func:`~h2crop.engine.checkpoint_experiment.provenance`).

    Raises:
        ValueError: Neither config nor checkpoint, or a checkpoint alone
            that carries no config.
        FileNotFoundError / RuntimeError: For a missing or unreadable
            checkpoint.
        ExperimentConfigError: Choices contradicting the checkpoint's.
        RuntimeError: When the checkpoint's weights do not match the model
            (missing or unexpected keys, other shapes).
    """
    from h2crop.registry import MODELS
    from h2crop.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    if config is None and checkpoint is None:
        raise ValueError('init_model needs a config, a checkpoint or both')
    state, record = None, None
    if checkpoint is not None:
        # our own training checkpoints hold mmengine's message hub
        obj = load_checkpoint_file(checkpoint, trust=TRUSTED)
        meta = obj.get('meta', {}) if isinstance(obj, Mapping) else {}
        record = record_of_meta(meta)
        state = unwrap_state_dict(obj, checkpoint)
    source = config if isinstance(config, str) else None
    if config is None:
        config = checkpoint_config(checkpoint, meta)
    cfg = resolve_inference_cfg(config, cfg_options, record, checkpoint,
                                allow_experiment_mismatch)
    model = MODELS.build(cfg.model.to_dict() if hasattr(
        cfg.model, 'to_dict') else dict(cfg.model))
    if state is None:
        model.init_weights()
    else:
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise RuntimeError(f'{checkpoint}: weights do not fit the model '
                               f'of {getattr(cfg, "filename", "the config")}'
                               f': {err}') from err
    model.cfg = cfg
    model.provenance = provenance(checkpoint, source, model.taxonomy,
                                  record)
    return model.to(device).eval()


def _as_tensor(value: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f'{name} must be a numpy array or a tensor, got '
                        f'{type(value).__name__}')
    return value


def prepare_raw_inputs(model: torch.nn.Module, s2: ArrayLike,
                       enmap: Optional[ArrayLike] = None,
                       prior: Optional[ArrayLike] = None
                       ) -> Tuple[Dict[str, torch.Tensor], bool]:
    """Raw tile arrays -> batched raw inputs the model's modalities need.

    Args:
        model: An :class:`~h2crop.models.H2CropSegmentor`.
        s2: int16 (T, 10, H, W) or (B, T, 10, H, W); the first
            ``model.num_frames`` months are used (tiles store 12).
        enmap: int16 (218, H/3, W/3) or batched.
        prior: uint8 (4, H, W) (all levels, as stored) or
            (len(model.levels), H, W), or batched.

    Returns:
        The inputs keyed by modality, each with a batch axis, and whether
        the caller passed a batch.
    """
    s2 = _as_tensor(s2, 's2')
    batched = s2.dim() == 5
    if s2.dim() not in (4, 5):
        raise ValueError(f's2 must be (T, 10, H, W) or (B, T, 10, H, W), '
                         f'got {tuple(s2.shape)}')
    if not batched:
        s2 = s2.unsqueeze(0)  # (1, T, 10, H, W)
    if s2.shape[1] < model.num_frames:
        raise ValueError(f's2 has {s2.shape[1]} months; the model uses '
                         f'{model.num_frames} (January onwards)')
    s2 = s2[:, :model.num_frames]
    height, width = s2.shape[-2:]
    if ENMAP in model.modalities and (height % ENMAP_SCALE
                                      or width % ENMAP_SCALE):
        raise ValueError(f'S2 size {height} x {width} must be a multiple of '
                         f'{ENMAP_SCALE} (EnMAP is on a 1/{ENMAP_SCALE} '
                         'grid)')
    inputs = {S2: s2}
    given = {ENMAP: enmap, PRIOR: prior}
    for key, value in given.items():
        if key in model.modalities and value is None:
            raise ValueError(f'the model uses {key!r}; pass {key}=...')
        if key not in model.modalities and value is not None:
            raise ValueError(f'the model was built without {key!r} '
                             f'(modalities {model.modalities}); leave '
                             f'{key} out')
        if value is None:
            continue
        value = _as_tensor(value, key)
        if value.dim() == 3:
            value = value.unsqueeze(0)  # (1, C, h, w)
        if value.dim() != 4 or value.shape[0] != s2.shape[0]:
            raise ValueError(f'{key} of shape {tuple(value.shape)} does not '
                             f'match s2 of shape {tuple(s2.shape)}')
        if key == ENMAP:
            expected = (height // ENMAP_SCALE, width // ENMAP_SCALE)
        else:
            expected = (height, width)
            if value.shape[1] == NUM_LEVELS and len(model.levels) != \
                    NUM_LEVELS:
                rows = [LEVELS.index(lv) for lv in model.levels]
                value = value[:, rows]
        if tuple(value.shape[-2:]) != expected:
            raise ValueError(f'{key} covers {tuple(value.shape[-2:])} '
                             f'pixels; expected {expected} for S2 of '
                             f'{height} x {width}')
        inputs[key] = value
    return inputs, batched


@torch.no_grad()
def inference_model(model: torch.nn.Module,
                    s2: ArrayLike,
                    enmap: Optional[ArrayLike] = None,
                    prior: Optional[ArrayLike] = None,
                    return_probs: bool = False) -> Dict[str, object]:
    """Map one tile (or a batch) of raw data.

    The model's data preprocessor normalises the raw values; inference
    follows ``model.test_cfg`` except that an input larger than the
    model's tile is always mapped with sliding windows.

    Args:
        model: From :func:`init_model`.
        s2: Raw int16 (T, 10, H, W) or (B, T, 10, H, W); H, W multiples
            of 3 when the model uses EnMAP.
        enmap: Raw int16 (218, H/3, W/3) (or batched) if the model uses it.
        prior: uint8 (4, H, W) last year's levels (or batched) if the model
            uses it.
        return_probs: Also return every level's class probabilities.

    Returns:
        dict with ``levels`` (names), ``pred`` uint8 (L, H, W) class ids,
        ``confidence`` float32 (L, H, W) probability of the chosen class,
        ``deepest_level`` uint8 (H, W) and, with ``return_probs``,
        ``probs`` level -> float32 (N_k + 1, H, W); all numpy, with a
        leading batch axis when ``s2`` had one.
    """
    raw, batched = prepare_raw_inputs(model, s2, enmap, prior)
    data = model.data_preprocessor(dict(inputs=raw, data_samples=None),
                                   False)
    inputs = data['inputs']
    height, width = inputs[S2].shape[-2:]
    crop = model.test_cfg['crop_size']
    mode = model.test_cfg['mode']
    if mode == 'whole' and (height > crop[0] or width > crop[1]):
        mode = 'slide'
    probs = model.predict_probs(inputs, mode=mode)
    decoded = model.decode_probs(probs)
    out = dict(levels=tuple(model.levels),
               pred=decoded['pred'].to(torch.uint8).cpu().numpy(),
               confidence=decoded['confidence'].float().cpu().numpy(),
               deepest_level=decoded['deepest'].cpu().numpy())
    if return_probs:
        out['probs'] = {lv: p.cpu().numpy() for lv, p in probs.items()}
    if not batched:
        out = {k: (v[0] if isinstance(v, np.ndarray) else
                   {lv: p[0] for lv, p in v.items()} if isinstance(v, dict)
                   else v) for k, v in out.items()}
    return out
