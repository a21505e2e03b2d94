"""Turn per-level class probabilities into per-level crop maps.

Two decoders are offered (``model.test_cfg.decode``):

* ``'argmax'`` (the paper): every level takes its most probable class on its
  own; levels may contradict each other (a wheat pixel under a "grassland"
  parent).
* ``'consistent'``: per pixel, the taxonomy path (background path included)
  whose summed log-probability over the predicted levels is highest, so the
  levels always form a path of the taxonomy.

and a per-pixel product, :func:`deepest_confident_level`: the deepest level
whose path probability (the product of the chosen classes' probabilities
from the coarsest predicted level down to it) reaches a threshold.
"""
from typing import Dict, Sequence

import numpy as np
import torch

from h2crop.constants import LEVELS
from h2crop.taxonomy import Taxonomy

#: Decoders understood by :func:`decode_levels`.
DECODERS = ('argmax', 'consistent')
#: Floor of probabilities before the log, so a zero never gives -inf.
_EPS = 1e-12


def taxonomy_paths(taxonomy: Taxonomy,
                   levels: Sequence[str] = LEVELS) -> np.ndarray:
    """Every path of the taxonomy restricted to ``levels``.

    One path per class of the finest level in ``levels`` (id 0, the
    background path, included): its ancestors at each of ``levels``.

    Args:
        taxonomy: A taxonomy with its parent maps (not the numeric fallback).
        levels: Level names, coarse to fine.

    Returns:
        int64 array (P, L): row p holds the ids at ``levels`` of path p.

    Raises:
        ValueError: For the numeric fallback taxonomy, whose parents are
            unknown.
    """
    if not taxonomy.has_hierarchy:
        raise ValueError(
            'consistent decoding needs the taxonomy\'s parent relation; the '
            'model was built without a taxonomy file (set model.taxonomy / '
            '--cfg-options taxonomy=cascade_labels.csv)')
    finest = levels[-1]
    columns = [taxonomy.ancestor_map(finest, lv) for lv in levels]
    return np.stack(columns, axis=1)  # (P, L)


def consistent_decode(probs: Sequence[torch.Tensor],
                      paths: torch.Tensor) -> torch.Tensor:
    """Most probable taxonomy path per pixel.

    Args:
        probs: Per level, probabilities (B, N_k + 1, H, W), coarse to fine.
        paths: int64 (P, L) from :func:`taxonomy_paths`, on the same device.

    Returns:
        int64 ids (B, L, H, W); every pixel is one row of ``paths``.
    """
    score = None
    for k, prob in enumerate(probs):
        logp = prob.clamp_min(_EPS).log()  # (B, N_k + 1, H, W)
        part = logp.index_select(1, paths[:, k])  # (B, P, H, W)
        score = part if score is None else score.add_(part)
    best = score.argmax(dim=1)  # (B, H, W)
    # (B, H, W) -> (B, H, W, L) -> (B, L, H, W)
    return paths[best].permute(0, 3, 1, 2).contiguous()


def decode_levels(probs: Sequence[torch.Tensor],
                  decode: str = 'argmax',
                  paths: torch.Tensor = None) -> torch.Tensor:
    """Class ids per level from per-level probabilities.

    Args:
        probs: Per level, probabilities (B, N_k + 1, H, W), coarse to fine.
        decode: ``'argmax'`` or ``'consistent'``.
        paths: (P, L) taxonomy paths, required for ``'consistent'``.

    Returns:
        int64 ids (B, L, H, W).
    """
    if decode == 'argmax':
        return torch.stack([p.argmax(dim=1) for p in probs], dim=1)
    if decode == 'consistent':
        if paths is None:
            raise ValueError('consistent decoding needs the taxonomy paths')
        return consistent_decode(probs, paths)
    raise ValueError(f'test_cfg.decode must be one of {DECODERS}, got '
                     f'{decode!r}')


def chosen_probability(probs: Sequence[torch.Tensor],
                       pred: torch.Tensor) -> torch.Tensor:
    """Probability of the chosen class per level (the confidence).

    Args:
        probs: Per level, probabilities (B, N_k + 1, H, W).
        pred: Chosen ids (B, L, H, W).

    Returns:
        float (B, L, H, W) in [0, 1].
    """
    return torch.stack(
        [p.gather(1, pred[:, k:k + 1]).squeeze(1)  # (B, H, W)
         for k, p in enumerate(probs)], dim=1)


def deepest_confident_level(confidence: torch.Tensor,
                            levels: Sequence[str] = LEVELS,
                            tau: float = 0.5) -> torch.Tensor:
    """Deepest level whose path probability is at least ``tau``.

    The path probability at level k is the product of the confidences of
    the predicted levels from the coarsest down to k; it never grows with
    depth, so the confident levels form a prefix of the path.

    Args:
        confidence: Probability of the chosen class (B, L, H, W).
        levels: Names of the L predicted levels, coarse to fine.
        tau: Threshold in [0, 1].

    Returns:
        uint8 (B, H, W): the level number (1 for ``'level1'`` .. 4), 0 where
        not even the coarsest predicted level reaches ``tau``.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f'tau must lie in [0, 1], got {tau}')
    numbers = torch.tensor([LEVELS.index(lv) + 1 for lv in levels],
                           dtype=torch.uint8, device=confidence.device)
    path_prob = confidence.double().cumprod(dim=1)  # (B, L, H, W)
    confident = path_prob >= tau
    count = confident.sum(dim=1)  # (B, H, W); a prefix, by monotonicity
    out = torch.zeros_like(count, dtype=torch.uint8)
    has = count > 0
    out[has] = numbers[count[has] - 1]
    return out


def probabilities(logits: Dict[str, torch.Tensor],
                  levels: Sequence[str]) -> Dict[str, torch.Tensor]:
    """Softmax over classes of every level's logits (float32)."""
    return {lv: logits[lv].float().softmax(dim=1) for lv in levels}
