"""Per-pixel MLP baseline trained and scored like the segmentation models.

Pixels of the train split are sampled, turned into feature vectors
(S2 bands of every month of the window, for ``enmap`` the spectrum of the
pixel's 30 m cell, for ``prior`` the one-hot prior of every level), z-scored
with the experiment's band statistics, and a :class:`PixelMLP` is trained
with Adam for a fixed number of steps. Every pixel of the test split is
then scored with the functions of :mod:`h2crop.evaluation.functional`, so
its numbers are comparable to the test metric of a trained model.
"""
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from mmengine.logging import print_log

from h2crop.constants import (
    ENMAP,
    ENMAP_SCALE,
    H5_DIR,
    H5_SUFFIX,
    PRIOR,
    S2,
    level_index,
)
from h2crop.datasets.h2crop_dataset import read_split_list, resolve_ann_file
from h2crop.datasets.h5io import LABEL, read_tile
from h2crop.evaluation.functional import (
    ALL,
    CHANGED,
    GT,
    INTERSECT,
    LEVEL_MEAN_METRICS,
    SUMMARY_METRICS,
    UNCHANGED,
    area_counts,
    class_metrics,
    nanmean,
    percent,
    subset_key,
    summary_metrics,
)
from h2crop.models.pixel_mlp import PixelMLP


def pixel_features(tile: Mapping[str, np.ndarray],
                   modalities: Sequence[str],
                   mean: Mapping[str, Sequence[float]],
                   std: Mapping[str, Sequence[float]],
                   num_classes: Sequence[int]) -> torch.Tensor:
    """Feature vector of every pixel of a tile.

    Args:
        tile: Output of :func:`~h2crop.datasets.h5io.read_tile`: ``s2``
            (T, 10, H, W), optionally ``enmap`` (218, H/3, W/3) and
            ``prior`` (L, H, W).
        modalities: Inputs to use (``s2`` always).
        mean: Per-band means by modality.
        std: Per-band standard deviations by modality.
        num_classes: Classes per prior row (for the one-hot prior).

    Returns:
        float32 tensor (H * W, F): z-scored S2 (T * 10), then the z-scored
        EnMAP spectrum (218) and the one-hot priors (sum of num_classes),
        when used.
    """
    s2 = torch.from_numpy(tile[S2].astype(np.float32))  # (T, C, H, W)
    s2 = (s2 - torch.tensor(mean[S2]).view(1, -1, 1, 1)) / \
        torch.tensor(std[S2]).view(1, -1, 1, 1)
    feats = [rearrange(s2, 't c h w -> (h w) (t c)')]
    if ENMAP in modalities:
        hs = torch.from_numpy(tile[ENMAP].astype(np.float32))  # (B, h, w)
        hs = (hs - torch.tensor(mean[ENMAP]).view(-1, 1, 1)) / \
            torch.tensor(std[ENMAP]).view(-1, 1, 1)
        # each 30 m cell covers ENMAP_SCALE x ENMAP_SCALE S2 pixels
        hs = hs.repeat_interleave(ENMAP_SCALE, 1).repeat_interleave(
            ENMAP_SCALE, 2)  # (B, H, W)
        feats.append(rearrange(hs, 'b h w -> (h w) b'))
    if PRIOR in modalities:
        prior = torch.from_numpy(tile[PRIOR].astype(np.int64))  # (L, H, W)
        for row, n in enumerate(num_classes):
            one_hot = F.one_hot(prior[row].clamp(0, n - 1), n)  # (H, W, n)
            feats.append(rearrange(one_hot.float(), 'h w n -> (h w) n'))
    return torch.cat(feats, dim=1)


class PixelBaseline:
    """Train and test a :class:`PixelMLP` on an experiment's splits.

    Args:
        data_root: Folder holding ``h5_data/``.
        ann_files: Split list path per split (``train``, ``test``); relative
            paths are resolved as the dataset does.
        modalities: Inputs of the baseline.
        end_month: Months of S2 used (January on).
        levels: Levels to predict.
        num_classes: Classes per level of ``levels``, background included.
        mean: Per-band means by modality (the experiment's ``norm_mean``).
        std: Per-band stds by modality (the experiment's ``norm_std``).
        exclude_background: Score crop classes only (class 0 dropped from
            the class means), as the test metric with the same setting.
        pixels_per_tile: Train pixels sampled per train tile.
        hidden_dims: Hidden widths of the MLP.
        steps: Adam steps.
        batch_size: Pixels per step.
        lr: Adam learning rate.
        seed: Seed of sampling and initialisation.
    """

    def __init__(self,
                 data_root: str,
                 ann_files: Mapping[str, str],
                 modalities: Sequence[str],
                 end_month: int,
                 levels: Sequence[str],
                 num_classes: Sequence[int],
                 mean: Mapping[str, Sequence[float]],
                 std: Mapping[str, Sequence[float]],
                 exclude_background: bool = False,
                 pixels_per_tile: int = 2048,
                 hidden_dims: Sequence[int] = (256, 256),
                 steps: int = 2000,
                 batch_size: int = 1024,
                 lr: float = 2e-3,
                 seed: int = 0) -> None:
        self.data_root = data_root
        self.ann_files = dict(ann_files)
        self.modalities = tuple(modalities)
        self.end_month = int(end_month)
        self.levels = tuple(levels)
        self.level_indices = [level_index(lv) for lv in self.levels]
        self.num_classes = [int(n) for n in num_classes]
        self.mean, self.std = mean, std
        self.first = 1 if exclude_background else 0
        self.pixels_per_tile = int(pixels_per_tile)
        self.hidden_dims = tuple(hidden_dims)
        self.steps, self.batch_size, self.lr = int(steps), batch_size, lr
        self.seed = seed
        self.model: Optional[PixelMLP] = None

    def _tiles(self, split: str) -> List[str]:
        lst = resolve_ann_file(self.ann_files[split], self.data_root)
        return [osp.join(self.data_root, H5_DIR, sid + H5_SUFFIX)
                for sid in read_split_list(lst)]

    def _read(self, path: str, with_prior: bool) -> Dict[str, np.ndarray]:
        mods = set(self.modalities) | ({PRIOR} if with_prior else set())
        return read_tile(path, tuple(mods), self.end_month,
                         self.level_indices)

    def _features(self, tile: Mapping[str, np.ndarray]) -> torch.Tensor:
        return pixel_features(tile, self.modalities, self.mean, self.std,
                              self.num_classes)

    def fit(self) -> 'PixelBaseline':
        """Sample train pixels and train the MLP."""
        gen = torch.Generator().manual_seed(self.seed)
        xs, ys = [], []
        for path in self._tiles('train'):
            tile = self._read(path, with_prior=False)
            x = self._features(tile)  # (H*W, F)
            y = rearrange(torch.from_numpy(tile[LABEL].astype(np.int64)),
                          'l h w -> (h w) l')
            keep = torch.randperm(x.shape[0], generator=gen)
            keep = keep[:self.pixels_per_tile]
            xs.append(x[keep])
            ys.append(y[keep])
        x, y = torch.cat(xs), torch.cat(ys)  # (N, F), (N, L)
        torch.manual_seed(self.seed)
        self.model = PixelMLP(x.shape[1], self.num_classes,
                              hidden_dims=self.hidden_dims)
        opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr,
                                weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=self.steps, pct_start=0.1)
        self.model.train()
        for step in range(self.steps):
            idx = torch.randint(0, x.shape[0], (self.batch_size, ),
                                generator=gen)
            logits = self.model(x[idx])
            loss = sum(F.cross_entropy(lg, y[idx, k])
                       for k, lg in enumerate(logits))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if (step + 1) % max(1, self.steps // 4) == 0:
                print_log(f'pixel baseline step {step + 1}/{self.steps}: '
                          f'loss {loss.item():.4f}', logger='current')
        self.model.eval()
        return self

    def evaluate(self, split: str = 'test') -> Dict[str, float]:
        """Score every pixel of a split.

        Returns:
            Metric dict in percent with the keys of the test metric:
            ``<level>/<summary>``, ``<level>/class/<id>/Fscore`` (classes
            with ground-truth pixels), ``<level>/changed/<summary>`` and
            ``<level>/unchanged/<summary>`` (where the tiles have a prior)
            and the level means ``mFscore`` / ``mIoU`` (and per subset).
        """
        if self.model is None:
            raise RuntimeError('PixelBaseline.evaluate before fit')
        counts = {lv: np.zeros((3, 3, n), np.int64)
                  for lv, n in zip(self.levels, self.num_classes)}
        has_prior = True
        for path in self._tiles(split):
            try:
                tile = self._read(path, with_prior=True)
            except ValueError:
                has_prior = False
                tile = self._read(path, with_prior=False)
            pred = self.model.predict(self._features(tile))  # (L, N)
            gt = rearrange(torch.from_numpy(tile[LABEL].astype(np.int64)),
                           'l h w -> l (h w)')
            for k, (lv, n) in enumerate(zip(self.levels, self.num_classes)):
                counts[lv][0] += area_counts(pred[k], gt[k], n)[0]
                if PRIOR in tile:
                    prior = torch.from_numpy(
                        tile[PRIOR][k].astype(np.int64)).flatten()
                    # subset 0: changed (label != prior), 1: unchanged
                    sub = (prior == gt[k]).long()
                    both = area_counts(pred[k], gt[k], n, sub)
                    counts[lv][1] += both[0]
                    counts[lv][2] += both[1]
        subsets = (ALL, CHANGED, UNCHANGED) if has_prior else (ALL, )
        metrics: Dict[str, float] = {}
        for s, subset in enumerate(subsets):
            key = subset_key(subset)
            for lv in self.levels:
                c = counts[lv][s][:, self.first:]
                per_class = class_metrics(c[INTERSECT], c[1], c[GT])
                summary = summary_metrics(per_class, c[INTERSECT], c[GT])
                for name in SUMMARY_METRICS:
                    metrics[f'{lv}/{key}{name}'] = percent(summary[name])
                if subset == ALL:  # per-class F-score of present classes
                    for i in np.flatnonzero(c[GT] > 0):
                        metrics[f'{lv}/class/{i + self.first}/Fscore'] = \
                            percent(per_class['Fscore'][i])
            for name in LEVEL_MEAN_METRICS:
                metrics[key + name] = round(nanmean(
                    [metrics[f'{lv}/{key}{name}'] for lv in self.levels]), 2)
        return metrics


def baseline_from_cfg(cfg, modalities: Sequence[str], end_month: int,
                      **kwargs) -> PixelBaseline:
    """A :class:`PixelBaseline` on the splits of a resolved config.

    Args:
        cfg: A config resolved by
            :func:`~h2crop.engine.experiment.resolve_experiment`.
        modalities: Inputs of the baseline.
        end_month: Months of S2 used.
        **kwargs: Further :class:`PixelBaseline` arguments.
    """
    from h2crop.engine.experiment import RESOLVED_KEY
    from h2crop.taxonomy import load_taxonomy
    choices = cfg[RESOLVED_KEY]
    taxonomy = load_taxonomy(choices['taxonomy'])
    levels: Tuple[str, ...] = tuple(choices['levels'])
    ev = cfg.test_evaluator
    ev = ev[0] if isinstance(ev, (list, tuple)) else ev
    anns = {split: cfg[f'{split}_dataloader'].dataset.ann_file
            for split in ('train', 'test')}
    return PixelBaseline(
        data_root=choices['data_root'],
        ann_files=anns,
        modalities=modalities,
        end_month=end_month,
        levels=levels,
        num_classes=[taxonomy.num_classes[level_index(lv)] for lv in levels],
        mean=choices['norm_mean'],
        std=choices['norm_std'],
        exclude_background=bool(ev.get('exclude_background', False)),
        **kwargs)
