"""Sliding-window helpers: window positions, edge weights, padding, blending.

Inputs are dictionaries keyed by modality: S2 (B, T, C, H, W), the prior
(B, L, H, W) on the S2 grid and EnMAP (B, C, H/s, W/s) on the grid
``s = ENMAP_SCALE`` times coarser. Windows are placed on the S2 grid with
sizes and starts that are multiples of ``s``, so the EnMAP window of an S2
window is exact: S2 rows ``y .. y + h`` <-> EnMAP rows ``y/s .. (y + h)/s``.

Overlapping windows are blended with a weight that falls linearly from the
window centre towards its edges (never to zero), applied to probabilities, so
the result at every pixel is a convex combination of the windows' outputs.
"""
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from h2crop.constants import ENMAP, ENMAP_SCALE, S2

Inputs = Dict[str, torch.Tensor]
#: Model function: preprocessed window inputs -> per-level probabilities
#: (N, N_k + 1, h, w).
ProbFn = Callable[[Inputs], Dict[str, torch.Tensor]]


def window_starts(size: int, crop: int, stride: int) -> List[int]:
    """Starts of windows of length ``crop`` covering ``0 .. size``.

    Regular steps of ``stride`` from 0; a last window is aligned to the end
    when the steps do not reach it (as mmseg's slide inference).

    Args:
        size: Length to cover, ``>= crop``.
        crop: Window length.
        stride: Step, ``1 <= stride <= crop``.
    """
    if size < crop:
        raise ValueError(f'size {size} is smaller than the window {crop}; '
                         'pad the input first')
    if not 1 <= stride <= crop:
        raise ValueError(f'stride {stride} must lie in 1..crop ({crop})')
    starts = list(range(0, size - crop + 1, stride))
    if starts[-1] + crop < size:
        starts.append(size - crop)
    return starts


def edge_weight(height: int, width: int,
                device: torch.device = None) -> torch.Tensor:
    """Blending weight of a window: a separable tent, > 0 everywhere.

    ``w(i) = min(i + 1/2, n - i - 1/2) / (n / 2)`` along each axis, so the
    centre weighs 1 and the outermost pixels ``1 / n``.

    Returns:
        float32 (height, width).
    """
    def tent(n: int) -> torch.Tensor:
        i = torch.arange(n, dtype=torch.float32, device=device) + 0.5
        return torch.minimum(i, n - i) / (n / 2)

    return tent(height)[:, None] * tent(width)[None, :]  # (h, w)


def pad_inputs(inputs: Inputs, pad_h: int, pad_w: int,
               scale: int = ENMAP_SCALE) -> Inputs:
    """Pad every modality at the bottom / right with zeros.

    Zero is the band mean for z-scored S2 / EnMAP and background for the
    prior. ``pad_h`` / ``pad_w`` are S2 pixels; EnMAP gets ``pad / scale``
    (both must then be multiples of ``scale``).
    """
    if pad_h == 0 and pad_w == 0:
        return inputs
    out = {}
    for key, value in inputs.items():
        if key == ENMAP:
            if pad_h % scale or pad_w % scale:
                raise ValueError(f'padding ({pad_h}, {pad_w}) is not a '
                                 f'multiple of the EnMAP scale {scale}')
            out[key] = F.pad(value, (0, pad_w // scale, 0, pad_h // scale))
        else:
            # S2 (B, T, C, H, W) and prior (B, L, H, W): last two axes
            out[key] = F.pad(value, (0, pad_w, 0, pad_h))
    return out


def pad_to(size: int, minimum: int, multiple: int) -> int:
    """Padding that makes ``size`` at least ``minimum`` and a multiple.

    Returns:
        int: Pixels to add so that ``size`` becomes at least ``minimum`` and
        a multiple of ``multiple``.
    """
    target = max(size, minimum)
    target = -(-target // multiple) * multiple
    return target - size


def crop_inputs(inputs: Inputs, y: int, x: int, h: int, w: int,
                scale: int = ENMAP_SCALE) -> Inputs:
    """The window ``rows y .. y+h, cols x .. x+w`` of every modality.

    The window is given in S2 pixels; EnMAP is cut on its coarse grid.
    """
    out = {}
    for key, value in inputs.items():
        if key == ENMAP:
            out[key] = value[..., y // scale:(y + h) // scale,
                             x // scale:(x + w) // scale]
        else:
            out[key] = value[..., y:y + h, x:x + w]
    return out


def check_window(crop: Tuple[int, int], stride: Tuple[int, int],
                 with_enmap: bool, scale: int = ENMAP_SCALE) -> None:
    """Refuse window / stride sizes EnMAP cannot follow or that leave gaps."""
    for name, pair in (('crop_size', crop), ('stride', stride)):
        if any(int(v) < 1 for v in pair):
            raise ValueError(f'test_cfg.{name} {pair} must be positive')
        if with_enmap and any(int(v) % scale for v in pair):
            raise ValueError(
                f'test_cfg.{name} {tuple(pair)} must be a multiple of '
                f'{scale} S2 pixels so that EnMAP windows follow on its '
                f'1/{scale} grid')
    if stride[0] > crop[0] or stride[1] > crop[1]:
        raise ValueError(f'test_cfg.stride {tuple(stride)} larger than '
                         f'crop_size {tuple(crop)} would leave gaps')


def slide_accumulate(prob_fn: ProbFn, inputs: Inputs,
                     crop: Tuple[int, int], stride: Tuple[int, int],
                     batch_size: int = 1, scale: int = ENMAP_SCALE,
                     acc: Optional[Dict[str, torch.Tensor]] = None,
                     wsum: Optional[torch.Tensor] = None
                     ) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """Weighted sums of window probabilities over an input.

    Args:
        prob_fn: Window inputs (N, ...) -> per-level probabilities.
        inputs: Preprocessed inputs with S2 (B, T, C, H, W), H >= crop[0],
            W >= crop[1] (pad first).
        crop: Window (height, width) in S2 pixels.
        stride: Steps (rows, cols).
        batch_size: Windows per call of ``prob_fn`` (each window brings the
            B samples of the input).
        scale: EnMAP scale.
        acc: Existing weighted probability sums to add into, level ->
            float32 (B, N_k + 1, H, W) (a streaming caller's buffers), or
            None to start from zero.
        wsum: Existing weight sum to add into, float32 (H, W), or None to
            start from zero.

    Returns:
        ``acc``: level -> float32 (B, N_k + 1, H, W), the sum over windows of
        weight x probability; ``wsum``: float32 (H, W), the sum of weights.
        ``acc / wsum`` is the blended probability.
    """
    height, width = inputs[S2].shape[-2:]
    ys = window_starts(height, crop[0], stride[0])
    xs = window_starts(width, crop[1], stride[1])
    device = inputs[S2].device
    weight = edge_weight(crop[0], crop[1], device)  # (h, w)
    if wsum is None:
        wsum = torch.zeros(height, width, device=device)
    acc = {} if acc is None else acc
    positions = [(y, x) for y in ys for x in xs]
    batch = inputs[S2].shape[0]
    for start in range(0, len(positions), max(1, int(batch_size))):
        chunk = positions[start:start + max(1, int(batch_size))]
        windows = [crop_inputs(inputs, y, x, crop[0], crop[1], scale)
                   for y, x in chunk]
        stacked = {key: torch.cat([w[key] for w in windows])
                   for key in inputs}  # (len(chunk) * B, ...)
        probs = prob_fn(stacked)
        for level, prob in probs.items():
            if level not in acc:
                acc[level] = torch.zeros(batch, prob.shape[1], height, width,
                                         device=device)
            # (len(chunk) * B, C, h, w) -> (len(chunk), B, C, h, w)
            prob = prob.float().view(len(chunk), batch, *prob.shape[1:])
            for i, (y, x) in enumerate(chunk):
                acc[level][..., y:y + crop[0], x:x + crop[1]].add_(
                    prob[i] * weight)
        for y, x in chunk:
            wsum[y:y + crop[0], x:x + crop[1]].add_(weight)
    return acc, wsum


def slide_probs(prob_fn: ProbFn, inputs: Inputs, crop: Tuple[int, int],
                stride: Tuple[int, int], batch_size: int = 1,
                scale: int = ENMAP_SCALE) -> Dict[str, torch.Tensor]:
    """Blended per-level probabilities of an input of any size.

    The input is padded at the bottom / right to at least the window and to
    a multiple of ``scale``, windows are blended, and the result is cropped
    back to the input size.

    Returns:
        level -> float32 (B, N_k + 1, H, W).
    """
    height, width = inputs[S2].shape[-2:]
    pad_h = pad_to(height, crop[0], scale if ENMAP in inputs else 1)
    pad_w = pad_to(width, crop[1], scale if ENMAP in inputs else 1)
    padded = pad_inputs(inputs, pad_h, pad_w, scale)
    acc, wsum = slide_accumulate(prob_fn, padded, crop, stride, batch_size,
                                 scale)
    return {lv: (a / wsum)[..., :height, :width] for lv, a in acc.items()}


def whole_probs(prob_fn: ProbFn, inputs: Inputs, crop: Tuple[int, int],
                scale: int = ENMAP_SCALE) -> Dict[str, torch.Tensor]:
    """Per-level probabilities of one pass over the input.

    The input is padded to at least ``crop`` (inputs smaller than the
    model's tile) and the result cropped back.
    """
    height, width = inputs[S2].shape[-2:]
    multiple = scale if ENMAP in inputs else 1
    pad_h = pad_to(height, crop[0], multiple)
    pad_w = pad_to(width, crop[1], multiple)
    probs = prob_fn(pad_inputs(inputs, pad_h, pad_w, scale))
    return {lv: p[..., :height, :width] for lv, p in probs.items()}


__all__ = ['window_starts', 'edge_weight', 'pad_inputs', 'pad_to',
           'crop_inputs', 'check_window', 'slide_accumulate', 'slide_probs',
           'whole_probs']
