"""The H2Crop segmentor: S2 (+ EnMAP) (+ prior) -> per-level crop maps."""
import copy
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor, BaseModel
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from h2crop.constants import (
    ENMAP,
    ENMAP_SCALE,
    LEVELS,
    PRIOR,
    S2,
    TILE_SIZE,
)
from h2crop.models.heads.decoding import (
    DECODERS,
    chosen_probability,
    decode_levels,
    deepest_confident_level,
    probabilities,
    taxonomy_paths,
)
from h2crop.registry import MODELS
from h2crop.taxonomy import load_taxonomy
from h2crop.validators import check_levels, check_modalities

from .any_window import (
    ANY_WINDOW_KEYS,
    AnyWindowInputs,
    Presence,
    check_any_window,
)
from .slide import check_window, slide_probs, whole_probs

#: Keys of ``test_cfg`` and their defaults (None: derived from the model).
TEST_CFG_DEFAULTS = dict(mode='whole', crop_size=None, stride=None,
                         decode='argmax', tau=0.5, batch_size=1)
#: Type of a ``pixel_skip`` config that names none.
PIXEL_SKIP_TYPE = 'PixelSkip'


def _fill(cfg: dict, key: str, value, owner: str) -> None:
    """Set a derived ``cfg[key]``; a value already given must agree."""
    if key in cfg and cfg[key] is not None:
        given = cfg[key]
        same = (tuple(given) == tuple(value) if isinstance(
            value, (list, tuple)) else given == value)
        if not same:
            raise ValueError(f'{owner}.{key}={given!r} contradicts the value '
                             f'{value!r} derived from the model; leave it out '
                             'of the config')
    cfg[key] = value


@MODELS.register_module()
class H2CropSegmentor(BaseModel):
    """Hierarchical crop segmentor of the H2Crop paper.

    S2 monthly series -> :class:`S2TemporalSwin` -> :class:`FusionDecoder`
    (+ EnMAP -> :class:`EnMAPSpectralSpatialEncoder`) -> feature F ->
    :class:`CascadeHeads` (+ one-hot prior). Every channel count of the neck
    and heads is derived here from the encoders and the taxonomy; configs
    only choose architectures, modalities, levels and the month window.

    Args:
        s2_encoder: Config of the S2 encoder (``num_frames`` is filled in).
        neck: Config of the decoder (channels are filled in).
        head: Config of the heads (``in_channels``, ``num_classes``,
            ``levels`` and ``with_prior`` are filled in).
        enmap_encoder: Config of the EnMAP encoder; required iff ``'enmap'``
            is in ``modalities``.
        modalities: Subset of ``('s2', 'enmap', 'prior')``; S2 is required.
        levels: Taxonomy levels predicted, coarse to fine (any subset).
        num_frames: Months T of the window (January .. month T); inputs must
            have exactly T months.
        taxonomy: Path of ``cascade_labels.csv`` or None for the paper's
            class counts.
        pixel_skip: Opt-in config of a :class:`~h2crop.models.necks.PixelSkip`
            (full-resolution per-pixel embedding of the S2 months and the
            EnMAP spectrum, concatenated to F before the heads); its
            ``num_frames`` and whether it has an EnMAP part are derived.
            None (the paper's model) leaves it out.
        data_preprocessor: Config of the data preprocessor (e.g.
            ``H2CropDataPreprocessor``); None uses mmengine's plain one.
        any_window: None (off) or ``dict(end_months=..., enmap_drop=...,
            prior_drop=...)``: one model for every month window and input
            set (:mod:`~h2crop.models.segmentors.any_window`). The model is
            built for ``num_frames`` months and ``modalities`` and then
            also takes fewer months (T <= ``num_frames``) and inputs without
            EnMAP / prior; training draws a window end month and drops of
            EnMAP / prior per sample.
        test_cfg: Inference options (see :meth:`set_test_cfg`):
            ``mode`` ``'whole'`` (one pass; with EnMAP, whose encoder
            takes a fixed tile, inputs smaller than ``crop_size`` are
            padded and cropped back) or ``'slide'``
            (overlapping windows blended by an edge-decaying weight);
            ``crop_size`` (int or (h, w); default: the tile the model was
            built for, ``3 x enmap_encoder.img_size`` with EnMAP, else
            :data:`~h2crop.constants.TILE_SIZE`); ``stride`` (default half
            the window, a multiple of 3 S2 pixels); ``decode``
            ``'argmax'`` | ``'consistent'``; ``tau``, the path-probability
            threshold of the deepest-confident-level product; ``batch_size``,
            windows per forward pass.
        init_cfg: mmengine init config.
    """

    #: Keys of the plain-dict arguments, for the config check
    #: (:mod:`h2crop.engine.option_check`): the keys, or the default type
    #: of a dict built through the model registry.
    dict_arg_keys = dict(test_cfg=tuple(TEST_CFG_DEFAULTS),
                         any_window=ANY_WINDOW_KEYS,
                         pixel_skip=PIXEL_SKIP_TYPE)

    def __init__(self,
                 s2_encoder: dict,
                 neck: dict,
                 head: dict,
                 enmap_encoder: Optional[dict] = None,
                 modalities: Sequence[str] = (S2, ),
                 levels: Sequence[str] = LEVELS,
                 num_frames: int = 6,
                 taxonomy: Optional[str] = None,
                 pixel_skip: Optional[dict] = None,
                 data_preprocessor: Optional[Union[dict,
                                                   torch.nn.Module]] = None,
                 test_cfg: Optional[dict] = None,
                 any_window: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        elif data_preprocessor is None:
            data_preprocessor = BaseDataPreprocessor()
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        modalities = check_modalities(modalities)
        if (ENMAP in modalities) != (enmap_encoder is not None):
            raise ValueError(
                f'modalities {modalities} and enmap_encoder disagree: give an '
                f'enmap_encoder config exactly when {ENMAP!r} is used')
        self.modalities = modalities
        self.levels = check_levels(levels)
        self.num_frames = int(num_frames)
        self.taxonomy = load_taxonomy(taxonomy)
        all_classes = self.taxonomy.num_classes
        num_classes = [all_classes[LEVELS.index(lv)] for lv in self.levels]

        s2_cfg = copy.deepcopy(dict(s2_encoder))
        _fill(s2_cfg, 'num_frames', self.num_frames, 's2_encoder')
        self.s2_encoder = MODELS.build(s2_cfg)
        if enmap_encoder is not None:
            self.enmap_encoder = MODELS.build(
                copy.deepcopy(dict(enmap_encoder)))
            enmap_channels = self.enmap_encoder.out_channels
        else:
            self.enmap_encoder = None
            enmap_channels = None

        neck_cfg = copy.deepcopy(dict(neck))
        skips = tuple(self.s2_encoder.feature_channels[:3])
        _fill(neck_cfg, 'in_channels', self.s2_encoder.encoder_channels,
              'neck')
        _fill(neck_cfg, 'skip_channels', skips, 'neck')
        _fill(neck_cfg, 'enmap_channels', enmap_channels, 'neck')
        self.neck = MODELS.build(neck_cfg)
        feature_channels = self.neck.out_channels
        self.pixel_skip = None
        if pixel_skip is not None:
            skip_cfg = copy.deepcopy(dict(pixel_skip))
            skip_cfg.setdefault('type', PIXEL_SKIP_TYPE)
            _fill(skip_cfg, 'num_frames', self.num_frames, 'pixel_skip')
            _fill(skip_cfg, 'absent_embedding', any_window is not None,
                  'pixel_skip')
            if ENMAP not in modalities:
                skip_cfg['enmap_embed_dims'] = None
            self.pixel_skip = MODELS.build(skip_cfg)
            feature_channels += self.pixel_skip.out_channels

        head_cfg = copy.deepcopy(dict(head))
        _fill(head_cfg, 'in_channels', feature_channels, 'head')
        _fill(head_cfg, 'num_classes', tuple(num_classes), 'head')
        _fill(head_cfg, 'levels', self.levels, 'head')
        _fill(head_cfg, 'with_prior', PRIOR in modalities, 'head')
        self.head = MODELS.build(head_cfg)
        self.any_window = None
        if any_window is not None:
            self.any_window = AnyWindowInputs(
                self.num_frames, modalities, enmap_channels,
                **check_any_window(any_window, self.num_frames, modalities))
        self.set_test_cfg(test_cfg)

    # ------------------------------------------------------------ inference
    @property
    def tile_size(self) -> int:
        """Side of the tile the model was built for (S2 pixels)."""
        if self.enmap_encoder is not None:
            return int(self.enmap_encoder.img_size) * ENMAP_SCALE
        return TILE_SIZE

    def set_test_cfg(self, test_cfg: Optional[dict] = None) -> None:
        """Validate ``test_cfg``, fill derived defaults, store it.

        Raises:
            ValueError: On unknown keys or values, or window sizes EnMAP
                cannot follow (not multiples of 3 S2 pixels).
        """
        cfg = dict(TEST_CFG_DEFAULTS)
        given = dict(test_cfg or {})
        unknown = sorted(set(given) - set(cfg))
        if unknown:
            raise ValueError(f'model.test_cfg: unknown keys {unknown}; '
                             f'expected {sorted(cfg)}')
        cfg.update(given)
        if cfg['mode'] not in ('whole', 'slide'):
            raise ValueError('model.test_cfg.mode must be "whole" or '
                             f'"slide", got {cfg["mode"]!r}')
        if cfg['decode'] not in DECODERS:
            raise ValueError(f'model.test_cfg.decode must be one of '
                             f'{DECODERS}, got {cfg["decode"]!r}')
        crop = cfg['crop_size'] or self.tile_size
        crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
        stride = cfg['stride']
        if stride is None:
            stride = tuple(max(ENMAP_SCALE, c // 2 // ENMAP_SCALE
                               * ENMAP_SCALE) for c in crop)
        stride = (stride, stride) if isinstance(stride, int) else tuple(
            stride)
        check_window(crop, stride, self.enmap_encoder is not None)
        if self.enmap_encoder is not None and crop != (self.tile_size, ) * 2:
            raise ValueError(
                f'model.test_cfg.crop_size {crop} differs from the EnMAP '
                f'encoder\'s fixed tile ({self.tile_size} px); leave '
                'crop_size out')
        cfg.update(crop_size=crop, stride=stride, tau=float(cfg['tau']),
                   batch_size=int(cfg['batch_size']))
        self._paths = None
        if cfg['decode'] == 'consistent':
            self._paths = torch.as_tensor(
                taxonomy_paths(self.taxonomy, self.levels))  # (P, L)
        self.test_cfg = cfg

    def _window_probs(self, inputs: Dict[str, torch.Tensor]
                      ) -> Dict[str, torch.Tensor]:
        """Per-level softmax probabilities of one forward pass."""
        logits = self._forward_logits(inputs)
        return probabilities(logits, self.levels)

    def predict_probs(self, inputs: Dict[str, torch.Tensor],
                      mode: Optional[str] = None
                      ) -> Dict[str, torch.Tensor]:
        """Per-level probabilities over the whole input, by ``test_cfg``.

        Args:
            inputs: Preprocessed batch, S2 (B, T, 10, H, W) with H, W
                multiples of 3 when EnMAP is used.
            mode: ``'whole'`` or ``'slide'``; None: ``test_cfg.mode``.

        Returns:
            level -> float32 (B, N_k + 1, H, W).
        """
        self._check_inputs(inputs)
        cfg = self.test_cfg
        mode = mode or cfg['mode']
        if mode not in ('whole', 'slide'):
            raise ValueError(f'mode must be "whole" or "slide", got {mode!r}')
        if mode == 'slide':
            return slide_probs(self._window_probs, inputs, cfg['crop_size'],
                               cfg['stride'], cfg['batch_size'])
        if self.enmap_encoder is None or ENMAP not in inputs:
            # the S2 stream takes any size: one pass over the input as is
            return self._window_probs(inputs)
        height, width = inputs[S2].shape[-2:]
        if height > cfg['crop_size'][0] or width > cfg['crop_size'][1]:
            raise ValueError(
                f'input of {height} x {width} px is larger than the '
                f'{cfg["crop_size"]} tile the EnMAP encoder takes; use '
                'model.test_cfg.mode="slide"')
        # smaller inputs are padded to the encoder's tile and cropped back
        return whole_probs(self._window_probs, inputs, cfg['crop_size'])

    def decode_probs(self, probs: Dict[str, torch.Tensor]
                     ) -> Dict[str, torch.Tensor]:
        """Class ids, confidence and deepest confident level.

        Args:
            probs: level -> (B, N_k + 1, H, W) probabilities.

        Returns:
            ``pred`` int64 (B, L, H, W), ``confidence`` float32
            (B, L, H, W), ``deepest`` uint8 (B, H, W).
        """
        ordered = [probs[lv] for lv in self.levels]
        paths = None
        if self._paths is not None:
            paths = self._paths.to(ordered[0].device)
        pred = decode_levels(ordered, self.test_cfg['decode'], paths)
        confidence = chosen_probability(ordered, pred)
        deepest = deepest_confident_level(confidence, self.levels,
                                          self.test_cfg['tau'])
        return dict(pred=pred, confidence=confidence, deepest=deepest)

    # ------------------------------------------------------------ helpers
    def _check_inputs(self, inputs: Dict[str, torch.Tensor]) -> None:
        if self.any_window is not None:
            self.any_window.check_inputs(inputs)
            return
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f'inputs lack modalities {missing}; the model was '
                           f'built for {self.modalities}, got keys '
                           f'{sorted(inputs)}')
        s2 = inputs[S2]
        if s2.dim() != 5 or s2.shape[1] != self.num_frames:
            raise ValueError(
                f'inputs[{S2!r}] must be (B, T={self.num_frames}, C, H, W) '
                f'(the month window this model was built for), got '
                f'{tuple(s2.shape)}')

    def _check_levels(self, inputs: Dict[str, torch.Tensor],
                      data_samples: Optional[List[SegDataSample]]) -> None:
        """Rows of labels / priors must be this model's levels, in order.

        Each sample's ``levels`` metainfo (set by the dataset) names the
        rows of its ``gt_sem_seg`` and prior; a dataset built with other
        levels, or the same in another order, would otherwise train on
        swapped levels or fail with a bare IndexError.

        Raises:
            ValueError: Naming the sample, its levels and the model's.
        """
        expected = len(self.levels)
        for index, sample in enumerate(data_samples or []):
            levels = sample.metainfo.get('levels')
            if levels is not None and tuple(levels) != self.levels:
                name = sample.metainfo.get('sample_id', f'#{index}')
                raise ValueError(
                    f'sample {name!r} holds levels {tuple(levels)} but the '
                    f'model predicts {self.levels}; set the same `levels` '
                    '(same order) for the dataset and the model')
        prior = inputs.get(PRIOR)
        if prior is not None and (prior.dim() != 4 or
                                  prior.shape[1] != expected):
            raise ValueError(
                f'inputs[{PRIOR!r}] must be (B, L={expected}, H, W) for the '
                f'model levels {self.levels}, got {tuple(prior.shape)}')
        for index, sample in enumerate(data_samples or []):
            name = sample.metainfo.get('sample_id', f'#{index}')
            if 'gt_sem_seg' in sample:
                rows = sample.gt_sem_seg.data.shape[0]
                if sample.gt_sem_seg.data.dim() != 3 or rows != expected:
                    raise ValueError(
                        f'gt_sem_seg of sample {name!r} has shape '
                        f'{tuple(sample.gt_sem_seg.data.shape)}; expected '
                        f'(L={expected}, H, W) for the model levels '
                        f'{self.levels}')

    def extract_feat(self, inputs: Dict[str, torch.Tensor],
                     presence: Optional[Presence] = None) -> torch.Tensor:
        """Encoders + decoder.

        Args:
            inputs: ``'s2'`` (B, T, C, H, W) float, ``'enmap'``
                (B, 218, H/3, W/3) float when used.
            presence: Any-window models only: per-sample end months and
                EnMAP use (training draws); None: the inputs as given.

        Returns:
            Feature F (B, neck.out_channels, H, W), followed by the pixel
            skip's channels when ``pixel_skip`` is set.
        """
        self._check_inputs(inputs)
        s2 = inputs[S2]
        if self.any_window is not None:
            presence = presence or self.any_window.presence(inputs)
            # (B, T, C, H, W) -> (B, num_frames, C, H, W)
            s2 = self.any_window.fill_months(s2, presence.end_month)
        enc = self.s2_encoder(s2)
        enmap_feature = None
        if self.enmap_encoder is not None and self.any_window is not None:
            enmap_feature = self.any_window.enmap_feature(
                self.enmap_encoder, inputs, presence.enmap,
                tuple(s2.shape[-2:]))
        elif self.enmap_encoder is not None:
            enmap_feature = self.enmap_encoder(inputs[ENMAP])
        feature = self.neck(enc['features_list'], enc['encoder_features'],
                            tuple(s2.shape[-2:]), enmap_feature)
        if self.pixel_skip is None:
            return feature
        hs, keep = None, None
        if self.enmap_encoder is not None:
            hs = inputs.get(ENMAP)
            if self.any_window is not None and hs is not None:
                keep = presence.enmap
        skip = self.pixel_skip(s2, hs, keep)  # hidden months already filled
        return torch.cat([feature, skip], dim=1)  # (B, C_F + C_skip, H, W)

    def _forward_logits(self, inputs: Dict[str, torch.Tensor],
                        presence: Optional[Presence] = None
                        ) -> Dict[str, torch.Tensor]:
        if self.any_window is not None:
            presence = presence or self.any_window.presence(inputs)
        feature = self.extract_feat(inputs, presence)
        if PRIOR not in self.modalities:
            return self.head(feature, None)
        if self.any_window is None:
            return self.head(feature, inputs[PRIOR])
        prior, keep = self.any_window.prior_input(
            inputs, presence.prior, len(self.levels))
        return self.head(feature, prior, prior_keep=keep)

    @staticmethod
    def _stack_gt(data_samples: List[SegDataSample]) -> torch.Tensor:
        if not data_samples:
            raise ValueError('mode="loss" needs data_samples with gt_sem_seg')
        return torch.stack([s.gt_sem_seg.data for s in data_samples]).long()

    # ------------------------------------------------------------ forward
    def forward(self,
                inputs: Dict[str, torch.Tensor],
                data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor'
                ) -> Union[Dict[str, torch.Tensor], List[SegDataSample]]:
        """Run the model.

        Args:
            inputs: Preprocessed batch: ``'s2'`` (B, T, 10, H, W) float,
                ``'enmap'`` (B, 218, H/3, W/3) float, ``'prior'`` (B, L, H, W)
                int, for the configured modalities.
            data_samples: Samples with ``gt_sem_seg`` (L, H, W).
            mode: ``'loss'`` -> dict of losses; ``'predict'`` -> samples with
                ``pred_sem_seg`` (L, H, W) decoded by ``test_cfg``,
                ``confidence`` (L, H, W) (probability of the chosen class),
                ``deepest_level`` (1, H, W) (and ``prior_sem_seg``);
                ``'tensor'`` -> dict level -> logits (B, N_k + 1, H, W).
        """
        self._check_levels(inputs, data_samples)
        if mode == 'tensor':
            return self._forward_logits(inputs)
        if mode == 'loss':
            presence = None
            if self.any_window is not None and self.training:
                presence = self.any_window.draw(inputs)
            logits = self._forward_logits(inputs, presence)
            return self.head.loss(logits, self._stack_gt(data_samples))
        if mode == 'predict':
            decoded = self.decode_probs(self.predict_probs(inputs))
            return self._attach_predictions(decoded, inputs, data_samples)
        raise ValueError(f'mode must be "tensor", "loss" or "predict", got '
                         f'{mode!r}')

    def _attach_predictions(self, decoded: Dict[str, torch.Tensor],
                            inputs: Dict[str, torch.Tensor],
                            data_samples: Optional[List[SegDataSample]]
                            ) -> List[SegDataSample]:
        pred = decoded['pred']  # (B, L, H, W)
        batch = pred.shape[0]
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(batch)]
        if len(data_samples) != batch:
            raise ValueError(f'{len(data_samples)} data_samples for a batch '
                             f'of {batch}')
        prior = inputs.get(PRIOR)
        for i, sample in enumerate(data_samples):
            sample.pred_sem_seg = PixelData(data=pred[i])
            sample.confidence = PixelData(data=decoded['confidence'][i])
            # (H, W) -> (1, H, W)
            sample.deepest_level = PixelData(
                data=decoded['deepest'][i].unsqueeze(0))
            if prior is not None:
                sample.prior_sem_seg = PixelData(data=prior[i].long())
        return data_samples
