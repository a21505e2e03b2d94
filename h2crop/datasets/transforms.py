"""Data transforms of the H2Crop pipeline.

A pipeline works on a ``results`` dict. :class:`LoadH2CropH5` fills it from
the options the dataset put there (``h5_path``, ``modalities``,
``end_month``, ``levels``, ``num_classes``) with raw arrays::

    's2'         int16 (T, 10, H, W)
    'enmap'      int16 (218, H/3, W/3)        (when requested)
    'prior'      uint8 (L, H, W)              (when requested)
    'gt_sem_seg' uint8 (L, H, W)
    'gt_parcel_id' uint32 (H, W)             (when the tile has parcel ids)

:class:`H2CropRandomCrop` cuts them to a random window aligned to the EnMAP
grid (experiment key ``train_crop_size``), :class:`H2CropRandomFlipRotate`
flips / rotates all of them alike and :class:`PackH2CropInputs` turns them
into the sample structure described in
``docs/design.md`` ("Sample structure": ``inputs`` dict + ``SegDataSample``).
Values stay int16 / uint8; normalisation happens batched in the data
preprocessor.
"""
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from h2crop.constants import (
    ENMAP,
    ENMAP_SCALE,
    LEVELS,
    MODALITIES,
    PRIOR,
    S2,
    level_index,
)
from h2crop.registry import TRANSFORMS

from .h5io import LABEL, PARCEL_ID, read_tile

#: ``results`` key of the label stack (mmseg's name).
GT_KEY = 'gt_sem_seg'
#: ``results`` key / SegDataSample field of the per-pixel parcel ids.
PARCEL_KEY = 'gt_parcel_id'
#: Keys of arrays that live on the pixel grid (all spatial transforms apply).
SPATIAL_KEYS = (S2, ENMAP, PRIOR, GT_KEY, PARCEL_KEY)
#: Metainfo keys copied into the SegDataSample by default.
META_KEYS = ('sample_id', 'h5_path', 'levels', 'end_month', 'ori_shape',
             'img_shape', 'flip', 'flip_direction', 'vflip', 'hflip',
             'rot90_k')


@TRANSFORMS.register_module()
class LoadH2CropH5(BaseTransform):
    """Read one tile: only the months, levels and modalities asked for.

    Required keys: ``h5_path``, ``modalities``, ``end_month``, ``levels``;
    optional ``num_classes`` (per requested level, background included; ids
    are then range-checked) and ``require_label`` (default True; False
    accepts label-free tiles, which then have no ``gt_sem_seg``). Added
    keys: ``'s2'``, ``'gt_sem_seg'``, ``'enmap'`` / ``'prior'`` when
    requested, ``'gt_parcel_id'`` when ``with_parcel_id`` and the tile has
    parcel ids, ``ori_shape``, ``img_shape``.

    The file is opened and closed within the call, so the transform is safe
    in forked DataLoader workers.

    Args:
        tile_size: Expected tile side; None accepts any size (taken from the
            label, must be a multiple of 3).
        with_parcel_id: Also load the optional ``parcel_id`` (uint32 (H, W)
            of converted tiles) for the parcel-level metric.

    Raises:
        H2CropDataError: Naming the file and key for a missing, truncated or
            corrupt tile or one with unexpected content.
    """

    def __init__(self, tile_size: Optional[int] = None,
                 with_parcel_id: bool = True) -> None:
        self.tile_size = tile_size
        self.with_parcel_id = bool(with_parcel_id)

    def transform(self, results: Dict) -> Dict:
        """Load the tile's arrays into ``results``.

        Args:
            results: Result dict holding ``h5_path`` and the dataset's
                options (``modalities``, ``levels``, ``end_month``, ...).

        Returns:
            dict: ``results`` with the raw arrays (see the module docstring),
            ``ori_shape`` and ``img_shape`` added.
        """
        modalities = results.get('modalities', MODALITIES)
        levels = results.get('levels', LEVELS)
        arrays = read_tile(results['h5_path'], modalities,
                           end_month=results.get('end_month', 12),
                           level_indices=[level_index(lv) for lv in levels],
                           num_classes=results.get('num_classes'),
                           tile_size=self.tile_size,
                           require_label=results.get('require_label', True),
                           parcel_id=self.with_parcel_id)
        results[S2] = arrays[S2]
        if PARCEL_ID in arrays:
            results[PARCEL_KEY] = arrays[PARCEL_ID]
        if LABEL in arrays:  # absent only in label-free inference tiles
            results[GT_KEY] = arrays[LABEL]
        for key in (ENMAP, PRIOR):
            if key in arrays:
                results[key] = arrays[key]
        shape = tuple(arrays[S2].shape[-2:])
        results['ori_shape'] = shape
        results['img_shape'] = shape
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(tile_size={self.tile_size}, '
                f'with_parcel_id={self.with_parcel_id})')


@TRANSFORMS.register_module()
class H2CropRandomFlipRotate(BaseTransform):
    """Random vertical flip, horizontal flip and 90-degree rotation.

    The same operation is applied to every S2 month, EnMAP (on its own 1/3
    grid, which is exact since the tile side is a multiple of 3), every label
    level and every prior level. Order: vertical flip (rows reversed), then
    horizontal flip (columns reversed), then ``np.rot90`` by ``k`` quarter
    turns counter-clockwise in the (H, W) plane. All three are composed into
    one view and copied once into a contiguous array.

    Added keys: ``vflip`` (bool), ``hflip`` (bool), ``rot90_k`` (0..3),
    ``flip`` (bool), ``flip_direction`` (list of 'vertical'/'horizontal'),
    updated ``img_shape``.

    Args:
        vflip_prob: Probability of a vertical flip.
        hflip_prob: Probability of a horizontal flip.
        rotate_prob: Probability of drawing a rotation.
        quarter_turns: Quarter turns ``k`` a drawn rotation picks from,
            uniformly. The default {1, 2, 3} always turns; the original
            implementation draws from {0, 1, 2, 3} (with ``rotate_prob``
            0.5 it turns 37.5 % of the samples), which the paper configs
            use.
    """

    def __init__(self,
                 vflip_prob: float = 0.5,
                 hflip_prob: float = 0.5,
                 rotate_prob: float = 0.5,
                 quarter_turns: Sequence[int] = (1, 2, 3)) -> None:
        for name, p in (('vflip_prob', vflip_prob), ('hflip_prob', hflip_prob),
                        ('rotate_prob', rotate_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f'{name}={p} is not a probability')
        turns = tuple(int(k) for k in quarter_turns)
        if not turns or any(k not in (0, 1, 2, 3) for k in turns) or \
                len(set(turns)) != len(turns):
            raise ValueError(f'quarter_turns={tuple(quarter_turns)}: expected '
                             'distinct values of {0, 1, 2, 3}')
        self.vflip_prob = vflip_prob
        self.hflip_prob = hflip_prob
        self.rotate_prob = rotate_prob
        self.quarter_turns = turns

    def transform(self, results: Dict) -> Dict:
        """Draw a random flip / rotation and apply it to every array.

        Args:
            results: Result dict with the spatial arrays.

        Returns:
            dict: ``results`` with the arrays transformed and the added keys
            listed in the class docstring.
        """
        vflip = bool(np.random.rand() < self.vflip_prob)
        hflip = bool(np.random.rand() < self.hflip_prob)
        k = 0
        if np.random.rand() < self.rotate_prob:
            k = self.quarter_turns[np.random.randint(len(self.quarter_turns))]
        return self.apply(results, vflip, hflip, k)

    @staticmethod
    def apply(results: Dict, vflip: bool, hflip: bool, k: int) -> Dict:
        """Apply the given flips/rotation to every spatial array."""
        if vflip or hflip or k % 4:
            for key in SPATIAL_KEYS:
                if key not in results:
                    continue
                view = results[key]  # (..., H, W)
                if vflip:
                    view = view[..., ::-1, :]
                if hflip:
                    view = view[..., ::-1]
                if k % 4:
                    view = np.rot90(view, k, axes=(-2, -1))
                results[key] = np.ascontiguousarray(view)
        results['vflip'] = vflip
        results['hflip'] = hflip
        results['rot90_k'] = k % 4
        results['flip'] = vflip or hflip
        results['flip_direction'] = [
            d for d, on in (('vertical', vflip), ('horizontal', hflip)) if on]
        if GT_KEY in results:
            results['img_shape'] = tuple(results[GT_KEY].shape[-2:])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(vflip_prob={self.vflip_prob}, '
                f'hflip_prob={self.hflip_prob}, '
                f'rotate_prob={self.rotate_prob}, '
                f'quarter_turns={self.quarter_turns})')


@TRANSFORMS.register_module()
class H2CropRandomCrop(BaseTransform):
    """Random square crop of a tile, aligned to the EnMAP grid.

    Set by the experiment key ``train_crop_size`` (``resolve_experiment``
    puts it into the train pipeline after ``LoadH2CropH5``); do not add it
    by hand. The crop's top-left corner is drawn uniformly among the
    positions that are multiples of ``ENMAP_SCALE`` S2 pixels, so the
    EnMAP cube is cut along whole 30 m cells: S2 (T, C, H, W), labels,
    prior and parcel ids (L, H, W) are cut to ``crop_size`` and EnMAP
    (B, H/3, W/3) to ``crop_size / 3``.

    Added keys: ``crop_bbox`` (top, left, bottom, right in S2 pixels of the
    tile), updated ``img_shape``.

    Args:
        crop_size: Side of the crop in S2 pixels (a multiple of 3).
    """

    def __init__(self, crop_size: int) -> None:
        if isinstance(crop_size, bool) or not isinstance(crop_size, int) or \
                crop_size < ENMAP_SCALE or crop_size % ENMAP_SCALE:
            raise ValueError(f'crop_size={crop_size!r}: expected a positive '
                             f'multiple of {ENMAP_SCALE} (S2 pixels per '
                             'EnMAP pixel)')
        self.crop_size = crop_size

    def transform(self, results: Dict) -> Dict:
        """Draw a crop and cut every spatial array to it.

        Args:
            results: Result dict of ``LoadH2CropH5``.

        Returns:
            dict: ``results`` with the arrays cut and ``crop_bbox`` added.

        Raises:
            ValueError: If the tile is smaller than the crop or its side is
                not a multiple of 3 (naming the sample).
        """
        height, width = results[S2].shape[-2:]
        size = self.crop_size
        if height < size or width < size or height % ENMAP_SCALE or \
                width % ENMAP_SCALE:
            raise ValueError(
                f'{results.get("sample_id", "sample")}: tile of {height} x '
                f'{width} px cannot be cut to train_crop_size={size} '
                f'(expected sides >= {size} and multiples of {ENMAP_SCALE})')
        # corners in EnMAP cells, so the cube is cut along whole cells
        top = np.random.randint((height - size) // ENMAP_SCALE + 1)
        left = np.random.randint((width - size) // ENMAP_SCALE + 1)
        cells = size // ENMAP_SCALE
        r0, c0 = top * ENMAP_SCALE, left * ENMAP_SCALE  # S2 pixels
        for key in SPATIAL_KEYS:
            if key not in results:
                continue
            if key == ENMAP:
                results[key] = np.ascontiguousarray(
                    results[key][..., top:top + cells, left:left + cells])
                continue
            results[key] = np.ascontiguousarray(
                results[key][..., r0:r0 + size, c0:c0 + size])
        results['crop_bbox'] = (r0, c0, r0 + size, c0 + size)
        results['img_shape'] = (size, size)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(crop_size={self.crop_size})'


@TRANSFORMS.register_module()
class PackH2CropInputs(BaseTransform):
    """Pack arrays into ``dict(inputs=..., data_samples=SegDataSample)``.

    Output (``L`` requested levels, ``T`` months)::

        inputs = {'s2': int16 (T, 10, H, W), 'enmap': int16 (218, H/3, W/3),
                  'prior': uint8 (L, H, W)}     # only the modalities present
        data_samples.gt_sem_seg = PixelData(data=uint8 (L, H, W))
        data_samples.gt_parcel_id = PixelData(data=int64 (1, H, W))  # if any

    Tensors share memory with the (contiguous) arrays; no copy is made unless
    an array is not contiguous.

    Args:
        meta_keys: Keys of ``results`` copied into the sample's metainfo
            when present.
    """

    def __init__(self, meta_keys: Sequence[str] = META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        """Pack the arrays of ``results`` into inputs and a data sample.

        Args:
            results: Result dict with at least the ``'s2'`` array.

        Returns:
            dict: ``dict(inputs=..., data_samples=SegDataSample)`` as
            described in the class docstring.

        Raises:
            KeyError: If ``results`` holds no ``'s2'`` array.
        """
        if S2 not in results:
            raise KeyError(f'PackH2CropInputs: no {S2!r} in results; put '
                           'LoadH2CropH5 first in the pipeline')
        inputs = {key: _to_tensor(results[key]) for key in MODALITIES
                  if key in results}
        sample = SegDataSample()
        if GT_KEY in results:
            sample.gt_sem_seg = PixelData(data=_to_tensor(results[GT_KEY]))
        if PARCEL_KEY in results:
            # uint32 (H, W) -> int64 (1, H, W): torch has little uint32
            # arithmetic, and PixelData holds channel-first arrays
            ids = results[PARCEL_KEY].astype(np.int64)[None]
            sample.gt_parcel_id = PixelData(data=torch.from_numpy(ids))
        sample.set_metainfo({key: results[key] for key in self.meta_keys
                             if key in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """Wrap an array as a tensor, copying only if it is not contiguous."""
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        arr = np.array(arr, order='C', copy=True)
    return torch.from_numpy(arr)
