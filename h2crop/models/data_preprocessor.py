"""Data preprocessor of the H2Crop models: batch, move, normalise, CutMix."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor
from torch import Tensor

from h2crop.constants import (
    ENMAP,
    ENMAP_BANDS,
    ENMAP_SCALE,
    MODALITIES,
    PRIOR,
    S2,
    S2_BANDS,
)
from h2crop.models.band_stats_guard import BandStatsGuard
from h2crop.models.batch_augments import batch_cutmix, check_cutmix_args
from h2crop.registry import MODELS

#: Modalities that are z-scored, with their band counts and the axis of the
#: bands in a batched tensor (S2 (B, T, C, H, W), EnMAP (B, C, h, w)).
_NORMALISED = {S2: (S2_BANDS, 2), ENMAP: (ENMAP_BANDS, 1)}
#: Dimensions of one sample per modality, for error messages.
_SAMPLE_DIMS = {S2: 4, ENMAP: 3, PRIOR: 3}
_SAMPLE_LAYOUT = {S2: '(T, C, H, W)', ENMAP: '(C, h, w)', PRIOR: '(L, H, W)'}
#: Keys of the ``cutmix`` option.
CUTMIX_KEYS = ('prob', 'ratio_range', 'enmap_scale')


@MODELS.register_module()
class H2CropDataPreprocessor(BaseDataPreprocessor):
    """Stack the samples, move them to the device, z-score and CutMix.

    The dataset keeps raw values (int16 S2 / EnMAP, uint8 priors and labels)
    so that the host moves as few bytes as possible; everything else happens
    here, on the model's device:

    1. every modality is moved to ``self.device`` (``non_blocking``; samples
       pinned by the dataloader are copied asynchronously) and stacked;
    2. in training, when ``cutmix`` is set,
       :func:`~h2crop.models.batch_augments.batch_cutmix` pastes donor
       squares into S2 (all months), EnMAP (the same square on its 1/3 grid,
       aligned exactly, see that module), every prior level and every label
       level, on the raw values;
    3. S2 and EnMAP become float32 z-scores per band, the priors int64, and
       every data sample's ``gt_sem_seg.data`` int64 on the device.

    Modalities absent from the inputs are absent from the output.

    Args:
        mean: Per-band means, ``{S2: 10 floats, ENMAP: 218 floats}``; the
            EnMAP entry may be left out for models without EnMAP.
        std: Per-band standard deviations, same keys as ``mean``, all > 0.
        cutmix: ``dict(prob=0.5, ratio_range=(0.5, 1.0))`` to enable batch
            CutMix in training (``enmap_scale`` may be given too, default
            :data:`~h2crop.constants.ENMAP_SCALE`), or None.
        non_blocking: Copy host tensors to the device asynchronously.
        stats_check_batches: Watch the normalised values of the first this
            many batches and log one warning naming the bands whose
            per-band std falls outside [0.2, 5] or whose |mean| exceeds 3
            (statistics that do not fit the data); 0 disables the check.

    The caller's tensors are never modified: batches are stacked (or
    cloned) before CutMix pastes into them, and z-scores are written into
    a float32 buffer of the preprocessor, reused from step to step while
    nothing else holds it.

    Raises:
        ValueError: If the statistics have unknown keys, wrong lengths or
            non-positive stds, or ``cutmix`` has unknown keys.
    """

    #: Keys of the plain-dict arguments (:mod:`h2crop.engine.option_check`).
    dict_arg_keys = dict(cutmix=CUTMIX_KEYS)

    def __init__(self,
                 mean: Dict[str, Sequence[float]],
                 std: Dict[str, Sequence[float]],
                 cutmix: Optional[dict] = None,
                 non_blocking: bool = True,
                 stats_check_batches: int = 4) -> None:
        super().__init__(non_blocking=non_blocking)
        self.stats_guard = BandStatsGuard(num_batches=stats_check_batches)
        if set(mean) != set(std):
            raise ValueError('H2CropDataPreprocessor: mean and std must have '
                             f'the same keys, got {sorted(mean)} and '
                             f'{sorted(std)}')
        if S2 not in mean:
            raise ValueError('H2CropDataPreprocessor: mean/std need the '
                             f'{S2!r} statistics, got keys {sorted(mean)}')
        for key in mean:
            if key not in _NORMALISED:
                raise ValueError(
                    f'H2CropDataPreprocessor: unknown statistics key {key!r};'
                    f' expected {sorted(_NORMALISED)}')
            bands = _NORMALISED[key][0]
            mean_t = torch.as_tensor(mean[key], dtype=torch.float32)
            std_t = torch.as_tensor(std[key], dtype=torch.float32)
            for name, values in (('mean', mean_t), ('std', std_t)):
                if values.dim() != 1 or values.numel() != bands:
                    raise ValueError(
                        f'H2CropDataPreprocessor: {name}[{key!r}] must hold '
                        f'{bands} values (one per band), got shape '
                        f'{tuple(values.shape)}')
            if not bool(torch.all(std_t > 0)):
                bad = torch.nonzero(~(std_t > 0)).flatten().tolist()
                raise ValueError(f'H2CropDataPreprocessor: std[{key!r}] must '
                                 f'be > 0, bands {bad} are not')
            # (C,) -> (C, 1, 1): broadcasts over the bands axis of a batch
            self.register_buffer(f'{key}_mean', mean_t.view(-1, 1, 1), False)
            self.register_buffer(f'{key}_std', std_t.view(-1, 1, 1), False)
        self.stat_keys = tuple(sorted(mean))
        #: per modality: (float32 output buffer, storage use count when free)
        self._buffers_pool: Dict[str, tuple] = {}

        self.cutmix: Optional[dict] = None
        if cutmix is not None:
            unknown = set(cutmix) - set(CUTMIX_KEYS)
            if unknown:
                raise ValueError('H2CropDataPreprocessor: unknown cutmix '
                                 f'keys {sorted(unknown)}; expected '
                                 f'{", ".join(CUTMIX_KEYS)}')
            self.cutmix = dict(prob=float(cutmix.get('prob', 0.5)),
                               ratio_range=tuple(
                                   cutmix.get('ratio_range', (0.5, 1.0))),
                               enmap_scale=int(
                                   cutmix.get('enmap_scale', ENMAP_SCALE)))
            # fail at build time, not on the first training batch
            check_cutmix_args(**self.cutmix)

    def _to_batch(self, key: str, value: Union[Tensor, Sequence[Tensor]],
                  sample_ids: List[str], will_paste: bool = False) -> Tensor:
        """Move one modality to the device and stack it to (B, ...).

        With ``will_paste`` (CutMix follows) the result never shares memory
        with a caller's tensor: a batched tensor already on the device is
        cloned, so CutMix pastes without touching the caller's data. Without
        it nothing writes into the result (z-scores go to their own buffer),
        so no copy is made.
        """
        dims = _SAMPLE_DIMS[key]
        if isinstance(value, Tensor):
            if value.dim() != dims + 1:
                raise ValueError(
                    f'H2CropDataPreprocessor: batched inputs[{key!r}] must be '
                    f'(B, {_SAMPLE_LAYOUT[key][1:]}, got shape '
                    f'{tuple(value.shape)}')
            moved = value.to(self.device, non_blocking=self._non_blocking)
            if will_paste and moved.untyped_storage().data_ptr() == \
                    value.untyped_storage().data_ptr():
                moved = moved.clone()
            return moved
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(
                f'H2CropDataPreprocessor: inputs[{key!r}] must be a tensor '
                f'or a non-empty list of tensors, got {type(value).__name__}')
        shape = tuple(value[0].shape)
        for index, item in enumerate(value):
            if not isinstance(item, Tensor) or item.dim() != dims or \
                    tuple(item.shape) != shape:
                found = (tuple(item.shape) if isinstance(item, Tensor) else
                         type(item).__name__)
                raise ValueError(
                    f'H2CropDataPreprocessor: inputs[{key!r}] of sample '
                    f'{sample_ids[index]!r} is {found}; expected a tensor '
                    f'{_SAMPLE_LAYOUT[key]} of shape {shape} like the first '
                    'sample of the batch')
        moved = [item.to(self.device, non_blocking=self._non_blocking)
                 for item in value]
        return torch.stack(moved)  # (B, *sample shape)

    def _normalise(self, key: str, batch: Tensor) -> Tensor:
        """float32 z-score per band; S2 (B,T,C,H,W), EnMAP (B,C,h,w)."""
        if key not in self.stat_keys:
            raise ValueError(f'H2CropDataPreprocessor: inputs hold {key!r} '
                             'but no mean/std were given for it')
        bands, axis = _NORMALISED[key]
        if batch.shape[axis] != bands:
            raise ValueError(
                f'H2CropDataPreprocessor: inputs[{key!r}] has '
                f'{batch.shape[axis]} bands on axis {axis} of shape '
                f'{tuple(batch.shape)}; expected {bands}')
        mean = getattr(self, f'{key}_mean')  # (C, 1, 1)
        std = getattr(self, f'{key}_std')
        # int16 -> float32 into a reused buffer, then in-place arithmetic:
        # a fresh float32 batch per step costs more than the z-score itself
        # on CPU (new pages are zero-filled on first touch)
        out = self._buffer(key, batch)
        return out.copy_(batch).sub_(mean).div_(std)

    def _buffer(self, key: str, batch: Tensor) -> Tensor:
        """A float32 tensor shaped like ``batch``, reused when it is free.

        The buffer of the previous step is reused only when nothing else
        holds its memory any more (no caller reference, view or autograd
        saved tensor); otherwise a new one is allocated, so a result handed
        out earlier is never overwritten.
        """
        entry = self._buffers_pool.get(key)
        if entry is not None:
            buf, free_count = entry
            if free_count is not None and buf.shape == batch.shape and \
                    buf.device == batch.device and \
                    _storage_use_count(buf) == free_count:
                # a new alias: whoever keeps it raises the use count
                return buf.view(buf.shape)
        buf = torch.empty(batch.shape, dtype=torch.float32,
                          device=batch.device)
        self._buffers_pool[key] = (buf, _storage_use_count(buf))
        return buf.view(buf.shape)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Prepare one batch from the dataloader for the model.

        Args:
            data: ``{'inputs': {S2: list of int16 (T, 10, H, W) or a stacked
                (B, T, 10, H, W), ENMAP: ... (218, h, w), PRIOR: ... uint8
                (L, H, W)}, 'data_samples': list[SegDataSample] | None}``.
            training: Whether training-time CutMix may be applied.

        Returns:
            dict: ``{'inputs': {S2: float32 (B, T, 10, H, W), ENMAP: float32
            (B, 218, h, w), PRIOR: int64 (B, L, H, W)} (present modalities
            only), 'data_samples': list[SegDataSample] | None}`` on
            ``self.device``, with ``gt_sem_seg.data`` int64 (L, H, W).
        """
        raw_inputs = data['inputs']
        if not isinstance(raw_inputs, dict):
            raise ValueError('H2CropDataPreprocessor: data["inputs"] must be '
                             f'a dict keyed by {MODALITIES}, got '
                             f'{type(raw_inputs).__name__}')
        unknown = set(raw_inputs) - set(MODALITIES)
        if unknown:
            raise ValueError('H2CropDataPreprocessor: unknown input '
                             f'modalities {sorted(unknown)}; expected a subset'
                             f' of {MODALITIES}')
        data_samples = data.get('data_samples')
        sample_ids: List[str] = []
        if data_samples is not None:
            data_samples = [
                sample.to(self.device, non_blocking=self._non_blocking)
                for sample in data_samples
            ]
            sample_ids = [str(s.metainfo.get('sample_id', f'#{i}'))
                          for i, s in enumerate(data_samples)]
        # fall back to batch positions where metainfo lacks ids
        first = next(iter(raw_inputs.values()), None)
        batch_len = len(first) if first is not None else 0
        sample_ids += [f'#{i}' for i in range(len(sample_ids), batch_len)]

        will_paste = training and self.cutmix is not None
        inputs = {key: self._to_batch(key, value, sample_ids, will_paste)
                  for key, value in raw_inputs.items()}

        if training and self.cutmix is not None:
            gts = self._stack_gts(data_samples, sample_ids)
            inputs, gts, _ = batch_cutmix(inputs, gts, **self.cutmix)
            gts = gts.long()  # (B, L, H, W)
            for sample, gt in zip(data_samples, gts):
                sample.gt_sem_seg.data = gt
        elif data_samples is not None:
            for sample in data_samples:
                if 'gt_sem_seg' in sample:
                    sample.gt_sem_seg.data = sample.gt_sem_seg.data.long()

        outputs = {}
        for key, batch in inputs.items():
            if key in _NORMALISED:
                outputs[key] = self._normalise(key, batch)
                self.stats_guard.update(key, outputs[key],
                                        _NORMALISED[key][1])
            else:
                outputs[key] = batch.long()
        self.stats_guard.step()
        return dict(inputs=outputs, data_samples=data_samples)

    @staticmethod
    def _stack_gts(data_samples: Optional[list],
                   sample_ids: List[str]) -> Tensor:
        """Stack the labels of a training batch for CutMix: (B, L, H, W)."""
        if not data_samples:
            raise ValueError('H2CropDataPreprocessor: CutMix in training '
                             'needs data_samples with gt_sem_seg')
        gts = []
        for index, sample in enumerate(data_samples):
            if 'gt_sem_seg' not in sample:
                raise ValueError(
                    'H2CropDataPreprocessor: CutMix in training needs '
                    f'gt_sem_seg; sample {sample_ids[index]!r} has none')
            gt = sample.gt_sem_seg.data
            if gt.dim() != 3 or (gts and gt.shape != gts[0].shape):
                raise ValueError(
                    f'H2CropDataPreprocessor: gt_sem_seg of sample '
                    f'{sample_ids[index]!r} has shape {tuple(gt.shape)}; '
                    'expected (L, H, W) '
                    + (f'= {tuple(gts[0].shape)} like the first sample'
                       if gts else ''))
            gts.append(gt)
        return torch.stack(gts)  # (B, L, H, W)


def _storage_use_count(tensor: Tensor) -> Optional[int]:
    """Number of holders of ``tensor``'s storage (tensors, views, autograd).

    Compared with the count right after allocation to tell whether anybody
    other than the pool still uses a buffer. None where this PyTorch build
    does not expose the count (buffers are then never reused).
    """
    count = getattr(torch._C, '_storage_Use_Count', None)
    if count is None:
        return None
    return int(count(tensor.untyped_storage()._cdata))
