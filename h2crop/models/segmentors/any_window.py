"""One model for every month window and input set ("any-window" mode).

An :class:`~h2crop.models.H2CropSegmentor` built with
``any_window=dict(end_months=..., enmap_drop=..., prior_drop=...)`` is built
for its maximum -- ``num_frames`` months and every modality it lists (the
EnMAP encoder and the one-hot prior inputs of the heads exist) -- and at
inference accepts S2 with any number of months T <= ``num_frames``
(January .. month T) and inputs without ``'enmap'`` and / or ``'prior'``,
without being rebuilt. :class:`AnyWindowInputs` holds what this needs:

* **Missing months.** After z-scoring, months after the window's end are
  *replaced* by a learned missing-month token, so the S2 encoder always sees
  ``num_frames`` frames. The token of month t and band c is
  ``month_token[c] + month_offset[t, c]``: the shared per-band part is
  trained whenever any month is hidden, the per-month offset only for the
  months hidden in training; both start at zero (the band mean of z-scored
  data), so a month never hidden in training (e.g. February when
  ``end_months`` starts at 4) falls back to the shared token rather than to
  an untrained value. The replacement is a ``torch.where``: the hidden
  values cannot reach the forward pass, and every token parameter stays in
  the autograd graph (a zero gradient when unused, so DDP needs no
  ``find_unused_parameters``).
* **Absent EnMAP.** The EnMAP feature map that enters the neck
  (``(B, enmap_channels, H, W)``) is replaced by a learned "absent"
  embedding (one vector of ``enmap_channels``, broadcast over H, W) for the
  samples without EnMAP. Inputs without ``'enmap'`` never run the EnMAP
  encoder; in training the encoder runs on the whole batch and the dropped
  samples' features are replaced (the encoder normalises per sample --
  LayerNorm only -- so a dropped cube influences no other sample either).
* **Absent prior.** The one-hot prior of a sample without prior is all
  zeros. A valid prior is one-hot and sums to one at every pixel, so all
  zeros is an unambiguous "no prior" code that keeps the heads' shapes (and
  so the weights of a model trained with priors); an extra "no prior"
  channel would carry no more information.

In training (``mode='loss'``), :meth:`AnyWindowInputs.draw` draws per
sample an end month from ``end_months`` and whether EnMAP and the prior are
dropped (probabilities ``enmap_drop`` / ``prior_drop``) with torch's global
RNG (seeded by mmengine). Validation and test use the inputs as given
(:meth:`AnyWindowInputs.presence`).
"""
import logging
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule

from h2crop.constants import ENMAP, PRIOR, S2, S2_BANDS

#: Keys of the segmentor's ``any_window`` option.
ANY_WINDOW_KEYS: Tuple[str, ...] = ('end_months', 'enmap_drop', 'prior_drop')
_OPTION = 'model.any_window'


@dataclass
class Presence:
    """What each sample of a batch holds.

    Attributes:
        end_month: int64 (B,), the last visible month (1-based); months
            after it are replaced by the missing-month token.
        enmap: bool (B,), whether the sample's EnMAP is used.
        prior: bool (B,), whether the sample's prior is used.
    """

    end_month: torch.Tensor
    enmap: torch.Tensor
    prior: torch.Tensor


def _probability(key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0.0 <= float(value) <= 1.0:
        raise ValueError(f'{_OPTION}.{key}={value!r}: expected a '
                         'probability in [0, 1]')
    return float(value)


def check_any_window(options: dict, num_frames: int,
                     modalities: Sequence[str]) -> dict:
    """Validate the ``any_window`` option of a segmentor.

    Args:
        options: ``dict(end_months=..., enmap_drop=..., prior_drop=...)``;
            defaults: every month ``1..num_frames``, no dropping.
        num_frames: The model's maximum window (``model.num_frames``).
        modalities: The model's modalities.

    Returns:
        The options with defaults filled in, ``end_months`` a sorted tuple.

    Raises:
        ValueError: Naming the option, on unknown keys, end months outside
            ``1..num_frames``, probabilities outside [0, 1] or a drop of a
            modality the model does not have.
    """
    if not isinstance(options, dict):
        raise ValueError(f'{_OPTION}={options!r}: expected a dict with keys '
                         f'{", ".join(ANY_WINDOW_KEYS)} (or None: off)')
    unknown = sorted(set(options) - set(ANY_WINDOW_KEYS))
    if unknown:
        raise ValueError(f'{_OPTION}: unknown keys {unknown}; expected '
                         f'{", ".join(ANY_WINDOW_KEYS)}')
    months = options.get('end_months', tuple(range(1, num_frames + 1)))
    if isinstance(months, int):
        months = (months, )
    months = tuple(months) if isinstance(months, (list, tuple)) else None
    if not months or any(isinstance(m, bool) or not isinstance(m, int) or
                         not 1 <= m <= num_frames for m in months):
        raise ValueError(
            f'{_OPTION}.end_months={options.get("end_months")!r}: expected '
            f'a non-empty list of months 1..{num_frames} (model.num_frames)')
    result = dict(end_months=tuple(sorted(set(months))))
    for key, modality in (('enmap_drop', ENMAP), ('prior_drop', PRIOR)):
        prob = _probability(key, options.get(key, 0.0))
        if prob > 0 and modality not in modalities:
            raise ValueError(
                f'{_OPTION}.{key}={prob}: the model has no {modality!r} '
                f'input (model.modalities={tuple(modalities)}); leave '
                f'{key} out')
        result[key] = prob
    return result


class AnyWindowInputs(BaseModule):
    """Learned stand-ins for hidden months and absent EnMAP / prior.

    See the module docstring for the design.

    Args:
        num_frames: Months the S2 encoder takes (the model's maximum).
        modalities: The model's modalities.
        enmap_channels: Channels of the EnMAP feature entering the neck, or
            None when the model has no EnMAP encoder.
        end_months: End months drawn per sample in training.
        enmap_drop: Probability that a training sample's EnMAP is dropped.
        prior_drop: Probability that a training sample's prior is dropped.
        init_cfg: mmengine init config (the tokens start at zero).
    """

    def __init__(self,
                 num_frames: int,
                 modalities: Sequence[str],
                 enmap_channels: Optional[int] = None,
                 end_months: Optional[Sequence[int]] = None,
                 enmap_drop: float = 0.0,
                 prior_drop: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        options = dict(enmap_drop=enmap_drop, prior_drop=prior_drop)
        if end_months is not None:
            options['end_months'] = end_months
        options = check_any_window(options, num_frames, modalities)
        if (ENMAP in modalities) != (enmap_channels is not None):
            raise ValueError(f'modalities {tuple(modalities)} and '
                             f'enmap_channels={enmap_channels} disagree')
        self.num_frames = int(num_frames)
        self.modalities = tuple(modalities)
        self.end_months = options['end_months']
        self.enmap_drop = options['enmap_drop']
        self.prior_drop = options['prior_drop']
        self.month_token = nn.Parameter(torch.zeros(S2_BANDS))
        self.month_offset = nn.Parameter(torch.zeros(num_frames, S2_BANDS))
        self.absent_enmap = (nn.Parameter(torch.zeros(enmap_channels))
                             if enmap_channels is not None else None)
        self._warned_partial = False

    # ------------------------------------------------------------ presence
    def check_inputs(self, inputs: Dict[str, torch.Tensor]) -> None:
        """Refuse inputs this model cannot take.

        Raises:
            KeyError: Without S2, or with a modality the model lacks.
            ValueError: If S2 is not (B, T, C, H, W) with 1 <= T <=
                ``num_frames``.
        """
        if S2 not in inputs:
            raise KeyError(f'inputs lack {S2!r}; got keys {sorted(inputs)}')
        extra = sorted(set(inputs) - set(self.modalities))
        if extra:
            raise KeyError(
                f'inputs hold {extra} but the any-window model was built '
                f'for {self.modalities} (model.modalities)')
        s2 = inputs[S2]
        if s2.dim() != 5 or not 1 <= s2.shape[1] <= self.num_frames:
            raise ValueError(
                f'inputs[{S2!r}] must be (B, T, C, H, W) with 1 <= T <= '
                f'{self.num_frames} (months January .. T; the any-window '
                f'model takes up to model.num_frames={self.num_frames}), '
                f'got {tuple(s2.shape)}')

    def presence(self, inputs: Dict[str, torch.Tensor]) -> Presence:
        """Presence of the inputs as given (validation, test, inference)."""
        s2 = inputs[S2]
        batch, device = s2.shape[0], s2.device
        return Presence(
            end_month=torch.full((batch, ), s2.shape[1], dtype=torch.long,
                                 device=device),
            enmap=torch.full((batch, ), ENMAP in inputs, device=device),
            prior=torch.full((batch, ), PRIOR in inputs, device=device))

    def draw(self, inputs: Dict[str, torch.Tensor]) -> Presence:
        """Per-sample training draws: end month, EnMAP / prior dropped.

        Uses torch's global (CPU) RNG, so a seeded run draws the same
        windows. The draws are combined with what the batch holds: a drawn
        end month beyond the batch's T months becomes T, and a modality
        missing from the batch is absent for every sample. Train on all
        ``num_frames`` months and every modality of the model
        (``end_month`` and ``modalities`` of the config) so that every
        stand-in and encoder is trained; with a modality missing, its
        encoder gets no gradient (DDP then needs
        ``find_unused_parameters``), which is logged once.

        Returns:
            The drawn :class:`Presence` on the inputs' device.
        """
        self.check_inputs(inputs)
        s2 = inputs[S2]
        missing = [m for m in self.modalities if m not in inputs]
        if (missing or s2.shape[1] < self.num_frames) and \
                not self._warned_partial:
            self._warned_partial = True
            print_log(
                f'any-window training batch holds {s2.shape[1]} of '
                f'{self.num_frames} months and lacks {missing}: set '
                f'end_month={self.num_frames} and modalities='
                f'{self.modalities} to train every stand-in and encoder',
                logger='current', level=logging.WARNING)
        batch, device = s2.shape[0], s2.device
        months = torch.tensor(self.end_months, dtype=torch.long)
        pick = torch.randint(len(self.end_months), (batch, ))
        end = months[pick].clamp(max=s2.shape[1])
        enmap = (torch.rand(batch) >= self.enmap_drop) & (ENMAP in inputs)
        prior = (torch.rand(batch) >= self.prior_drop) & (PRIOR in inputs)
        return Presence(end_month=end.to(device), enmap=enmap.to(device),
                        prior=prior.to(device))

    # ------------------------------------------------------------ stand-ins
    def missing_month_token(self) -> torch.Tensor:
        """The token of every month and band, (num_frames, S2_BANDS)."""
        return self.month_token.unsqueeze(0) + self.month_offset

    def fill_months(self, s2: torch.Tensor,
                    end_month: torch.Tensor) -> torch.Tensor:
        """Pad to ``num_frames`` months; replace hidden months by the token.

        Args:
            s2: Z-scored S2 (B, T, C, H, W), T <= ``num_frames``.
            end_month: int64 (B,), each <= T.

        Returns:
            (B, num_frames, C, H, W): month t (1-based) is the input where
            t <= end_month, else the token of month t.
        """
        batch, months, bands, height, width = s2.shape
        if months < self.num_frames:
            pad = s2.new_zeros((batch, self.num_frames - months, bands,
                                height, width))
            s2 = torch.cat([s2, pad], dim=1)  # (B, num_frames, C, H, W)
        month = torch.arange(1, self.num_frames + 1, device=s2.device)
        # (B, num_frames) -> (B, num_frames, 1, 1, 1)
        hidden = (month.unsqueeze(0) > end_month.unsqueeze(1)).view(
            batch, self.num_frames, 1, 1, 1)
        # (num_frames, C) -> (1, num_frames, C, 1, 1)
        token = self.missing_month_token().to(s2.dtype).view(
            1, self.num_frames, bands, 1, 1)
        return torch.where(hidden, token, s2)

    def enmap_feature(self, encoder: nn.Module,
                      inputs: Dict[str, torch.Tensor], keep: torch.Tensor,
                      size: Tuple[int, int]) -> torch.Tensor:
        """EnMAP feature for the neck, the absent embedding where dropped.

        Args:
            encoder: The EnMAP encoder.
            inputs: Batch; ``'enmap'`` (B, 218, H/3, W/3) when present.
            keep: bool (B,), samples whose EnMAP is used.
            size: (H, W) of the S2 input.

        Returns:
            (B, enmap_channels, H, W).
        """
        batch = keep.shape[0]
        absent = self.absent_enmap.view(1, -1, 1, 1)  # (1, C_e, 1, 1)
        if ENMAP not in inputs:
            return absent.expand(batch, -1, *size)
        feature = encoder(inputs[ENMAP])  # (B, C_e, H, W)
        return torch.where(keep.view(batch, 1, 1, 1), feature,
                           absent.to(feature.dtype))

    def prior_input(self, inputs: Dict[str, torch.Tensor], keep: torch.Tensor,
                    num_levels: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Prior ids and the per-sample keep mask for the heads.

        Without ``'prior'`` in the inputs the ids are zeros (ignored: the
        mask is all False and the heads' one-hot becomes all zeros).

        Returns:
            int64 ids (B, L, H, W) and bool ``keep`` (B,).
        """
        if PRIOR in inputs:
            return inputs[PRIOR], keep
        s2 = inputs[S2]
        batch, height, width = s2.shape[0], *s2.shape[-2:]
        ids = torch.zeros((batch, num_levels, height, width),
                          dtype=torch.long, device=s2.device)
        return ids, keep

    def extra_repr(self) -> str:
        """The options, shown when the model is printed."""
        return (f'num_frames={self.num_frames}, end_months='
                f'{self.end_months}, enmap_drop={self.enmap_drop}, '
                f'prior_drop={self.prior_drop}')


__all__ = ['ANY_WINDOW_KEYS', 'AnyWindowInputs', 'Presence',
           'check_any_window']
