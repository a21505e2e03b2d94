"""Batch CutMix for multi-modal crop tiles (the original's ``CropCutup``).

Every sample of a batch is, with probability ``prob``, overwritten inside a
random square by the same square of another sample of the batch (the donor).
The square is pasted into every full-resolution tensor (S2, all months and
bands; every prior level; every label level) and, at a third of the
resolution, into EnMAP, so all modalities, labels and priors keep describing
the same ground.

Alignment with the EnMAP grid
-----------------------------
One EnMAP pixel covers ``enmap_scale`` x ``enmap_scale`` (3 x 3) S2 pixels.
The specification draws ``side = int(H * r)`` and a free top-left corner; the
original then truncates ``top / 3`` and ``side / 3`` for EnMAP, so its EnMAP
square is generally shifted and smaller than the S2 square (some EnMAP pixels
inside the pasted S2 area still show the receiving tile, and the other way
round). Here the square is drawn on the EnMAP grid instead and expressed in
S2 pixels, so it maps exactly onto whole EnMAP pixels:

- ``side = enmap_scale * int((H / enmap_scale) * r)``. Since
  ``floor(floor(x) / 3) == floor(x / 3)``, this is the largest multiple of 3
  not above the specification's ``int(H * r)``: for ``H = 192`` and
  ``r ~ U[0.5, 1)`` the side lies in ``{96, 99, ..., 189}`` instead of
  ``{96, ..., 191}``.
- ``top`` (and ``left``) is uniform over the multiples of ``enmap_scale`` in
  ``[0, H - side]`` (the original: uniform over all integers of that range).

The alignment is applied whether or not EnMAP is in the batch, so S2-only
and S2 + EnMAP runs see the same augmentation distribution (and, with the
same seed, the same squares). ``enmap_scale=1`` gives the specification's
unaligned draw exactly.

Other facts kept from the original: ``r ~ U[ratio_range)``, one ``r`` for
both sides; the donor is another sample of the batch; donors are read from
the batch as it was before any paste of this call. Differences: the donor is
uniform over the *other* samples (the original's redraw rule doubles the
chance of the next sample), and the priors are pasted too (the original
looks them up under a key that does not exist and never pastes them).

Randomness comes from torch's global CPU generator only (one
``torch.rand(B, 5, dtype=float64)`` per call, however many samples are cut),
so ``torch.manual_seed`` / mmengine's seeding make it reproducible and a
resumed run that restores the RNG state continues the same stream.
"""
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from h2crop.constants import ENMAP, ENMAP_SCALE

__all__ = ['CutMixBox', 'batch_cutmix', 'check_cutmix_args',
           'sample_cutmix_boxes']


class CutMixBox(NamedTuple):
    """One pasted square, in S2 (full-resolution) pixels.

    Attributes:
        index: Sample of the batch that receives the square.
        donor: Sample of the batch the square is taken from.
        top: First row of the square.
        left: First column of the square.
        height: Rows of the square.
        width: Columns of the square.
    """
    index: int
    donor: int
    top: int
    left: int
    height: int
    width: int


def check_cutmix_args(prob: float, ratio_range: Sequence[float],
                       enmap_scale: int) -> Tuple[float, float]:
    """Validate CutMix settings.

    Args:
        prob: Chance per sample, in [0, 1].
        ratio_range: ``(min, max)`` with ``0 < min <= max <= 1``.
        enmap_scale: Positive integer grid step.

    Returns:
        tuple: ``ratio_range`` as two floats.

    Raises:
        ValueError: If a setting is out of range.
    """
    if not 0.0 <= float(prob) <= 1.0:
        raise ValueError(f'cutmix prob must lie in [0, 1], got {prob!r}')
    if len(ratio_range) != 2:
        raise ValueError('cutmix ratio_range must be (min, max), got '
                         f'{ratio_range!r}')
    low, high = float(ratio_range[0]), float(ratio_range[1])
    if not 0.0 < low <= high <= 1.0:
        raise ValueError('cutmix ratio_range must satisfy 0 < min <= max <= '
                         f'1, got {ratio_range!r}')
    if int(enmap_scale) != enmap_scale or enmap_scale < 1:
        raise ValueError(
            f'enmap_scale must be a positive integer, got {enmap_scale!r}')
    return low, high


def sample_cutmix_boxes(batch_size: int,
                        height: int,
                        width: int,
                        prob: float = 0.5,
                        ratio_range: Sequence[float] = (0.5, 1.0),
                        enmap_scale: int = ENMAP_SCALE
                        ) -> List[Optional[CutMixBox]]:
    """Draw the CutMix squares of one batch from torch's global RNG.

    Args:
        batch_size: Samples in the batch (B).
        height: Full-resolution rows (H), a multiple of ``enmap_scale``.
        width: Full-resolution columns (W), a multiple of ``enmap_scale``.
        prob: Chance that a sample receives a square.
        ratio_range: ``(min, max)``; ``r ~ U[min, max)`` and the side is
            ``enmap_scale * int(H / enmap_scale * r)`` (see module doc).
        enmap_scale: Grid step in full-resolution pixels the squares snap to.

    Returns:
        list: B entries, a :class:`CutMixBox` for every sample that receives a
        square and ``None`` for the others. A batch of one has no donor and
        is never cut.
    """
    low, high = check_cutmix_args(prob, ratio_range, enmap_scale)
    if height % enmap_scale or width % enmap_scale:
        raise ValueError(
            f'CutMix needs H and W divisible by enmap_scale={enmap_scale}, '
            f'got H={height}, W={width}')
    cells_h, cells_w = height // enmap_scale, width // enmap_scale
    # Fixed consumption of the global RNG: one row of 5 uniforms per sample
    # (apply, donor, ratio, top, left), drawn on the CPU (no device sync).
    draws = torch.rand(batch_size, 5, dtype=torch.float64).tolist()
    boxes: List[Optional[CutMixBox]] = []
    for index, (u_apply, u_donor, u_ratio, u_top, u_left) in enumerate(draws):
        if batch_size < 2 or not u_apply < prob:
            boxes.append(None)
            continue
        # uniform over the B - 1 other samples
        donor = int(u_donor * (batch_size - 1))
        donor += int(donor >= index)
        ratio = low + u_ratio * (high - low)
        side_h = int(cells_h * ratio)  # in grid cells
        side_w = int(cells_w * ratio)
        top = int(u_top * (cells_h - side_h + 1))  # in [0, cells_h - side_h]
        left = int(u_left * (cells_w - side_w + 1))
        boxes.append(
            CutMixBox(index, donor, top * enmap_scale, left * enmap_scale,
                      side_h * enmap_scale, side_w * enmap_scale))
    return boxes


def batch_cutmix(inputs: Dict[str, Tensor],
                 gts: Optional[Tensor],
                 prob: float = 0.5,
                 ratio_range: Sequence[float] = (0.5, 1.0),
                 enmap_scale: int = ENMAP_SCALE
                 ) -> Tuple[Dict[str, Tensor], Optional[Tensor],
                            List[Optional[CutMixBox]]]:
    """Paste donor squares into every modality, label and prior, in place.

    Args:
        inputs: Batched modalities. Every key except :data:`ENMAP` is a
            full-resolution tensor whose last two axes are (H, W), e.g.
            S2 (B, T, C, H, W) and prior (B, L, H, W); :data:`ENMAP` is
            (B, C_e, H / enmap_scale, W / enmap_scale). Any dtype.
        gts: Labels (B, L, H, W), or None.
        prob: Chance that a sample receives a square.
        ratio_range: ``(min, max)`` of the side ratio ``r``.
        enmap_scale: Full-resolution pixels per EnMAP pixel along one axis.

    Returns:
        tuple: ``(inputs, gts, boxes)``; the tensors are the given ones,
        modified in place, and ``boxes`` is the list of
        :func:`sample_cutmix_boxes` (squares in full-resolution pixels; the
        EnMAP square is the same divided by ``enmap_scale``).

    Raises:
        ValueError: If the tensors disagree on batch size or grid, or if the
            settings are invalid.
    """
    full_res: Dict[str, Tensor] = {
        key: value for key, value in inputs.items() if key != ENMAP}
    if gts is not None:
        full_res['gt_sem_seg'] = gts
    if not full_res:
        raise ValueError('batch_cutmix needs at least one full-resolution '
                         'tensor (S2, prior or labels) to define the grid; '
                         f'got only {sorted(inputs)}')
    first_key = next(iter(full_res))
    batch_size = full_res[first_key].shape[0]
    height, width = full_res[first_key].shape[-2:]
    for key, value in full_res.items():
        if value.dim() < 3 or value.shape[0] != batch_size or \
                tuple(value.shape[-2:]) != (height, width):
            raise ValueError(
                f'batch_cutmix: {key!r} has shape {tuple(value.shape)}, '
                f'expected (B={batch_size}, ..., H={height}, W={width}) like '
                f'{first_key!r}')
    enmap = inputs.get(ENMAP)
    if enmap is not None:
        expected = (height // enmap_scale, width // enmap_scale)
        if enmap.dim() < 3 or enmap.shape[0] != batch_size or \
                height % enmap_scale or width % enmap_scale or \
                tuple(enmap.shape[-2:]) != expected:
            raise ValueError(
                f'batch_cutmix: {ENMAP!r} has shape {tuple(enmap.shape)}, '
                f'expected (B={batch_size}, C, {height}/{enmap_scale}, '
                f'{width}/{enmap_scale}) for full-resolution H={height}, '
                f'W={width}')

    boxes = sample_cutmix_boxes(batch_size, height, width, prob, ratio_range,
                                enmap_scale)
    applied = [box for box in boxes if box is not None]
    if not applied:
        return inputs, gts, boxes

    # Read every donor square before any paste, so a sample that is both a
    # donor and a receiver gives its original content.
    patches = []
    for box in applied:
        rows = slice(box.top, box.top + box.height)
        cols = slice(box.left, box.left + box.width)
        patch = {key: value[box.donor, ..., rows, cols].clone()
                 for key, value in full_res.items()}
        if enmap is not None:
            e_rows = slice(box.top // enmap_scale,
                           (box.top + box.height) // enmap_scale)
            e_cols = slice(box.left // enmap_scale,
                           (box.left + box.width) // enmap_scale)
            patch[ENMAP] = enmap[box.donor, ..., e_rows, e_cols].clone()
        patches.append(patch)
    for box, patch in zip(applied, patches):
        rows = slice(box.top, box.top + box.height)
        cols = slice(box.left, box.left + box.width)
        for key, value in full_res.items():
            value[box.index, ..., rows, cols] = patch[key]
        if enmap is not None:
            e_rows = slice(box.top // enmap_scale,
                           (box.top + box.height) // enmap_scale)
            e_cols = slice(box.left // enmap_scale,
                           (box.left + box.width) // enmap_scale)
            enmap[box.index, ..., e_rows, e_cols] = patch[ENMAP]
    return inputs, gts, boxes
