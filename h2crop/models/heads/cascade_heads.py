"""Cascade of per-level classification heads.

See ``docs/design.md``, "Cascade heads", and the H2Crop paper.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from h2crop.constants import LEVELS
from h2crop.registry import MODELS
from h2crop.validators import check_levels


def _check_width(name: str, value: Optional[int], paper: str) -> None:
    """Refuse a head width that is not a positive int or None.

    Args:
        name: Option name under ``head.``.
        value: The given width.
        paper: What None means (the paper's choice), for the message.
    """
    if value is not None and (isinstance(value, bool)
                              or not isinstance(value, int) or value < 1):
        raise ValueError(f'head.{name}={value!r}: expected a positive int '
                         f"or None (the paper's {paper})")


@MODELS.register_module()
class CascadeHeads(BaseModule):
    """One head per taxonomy level, each fed the previous level's logits.

    The input of the head of the i-th configured level is
    cat[F, raw logits of the (i-1)-th configured level (absent for the
    first), one-hot prior of this level with N_k + 1 classes (only with
    priors)]. Each head is Conv3x3(E -> E//2) (opt-in: Conv1x1) -> ReLU ->
    Conv1x1(E//2 -> N_k + 1). With a single level (the independent-head
    ablation) no logits are passed on.

    Args:
        in_channels: Channels of the feature F (derived from the neck).
        num_classes: Classes per configured level, background included.
        levels: Level names, coarse to fine, a subset of ``LEVELS``.
        with_prior: Whether the one-hot prior of each level is appended.
        loss_weight: Weight of every level's cross-entropy (scalar or one
            per level).
        kernel_size: Kernel of each head's hidden convolution: 3 (the
            paper's) or 1 (opt-in: a per-pixel head; the spatial context then
            comes from F alone). At full resolution the 3 x 3 hidden
            convolutions over the wide head inputs (F, previous logits,
            one-hot prior) are about 80 % of the demo model's multiply-adds;
            1 x 1 makes them 9x cheaper.
        hidden_channels: Width of every head's hidden convolution; None
            (the paper's) uses half of the head's input channels.
        linear_shortcut: Add a 1 x 1 convolution of the head input to the
            logits (logits = conv_seg(relu(hidden(x))) + shortcut(x)).
        reduce_channels: None (the paper's) or N: a linear Conv1x1(E -> N)
            before each head's hidden convolution, which then reads N
            channels instead of E. A rank-N factorisation of the 3 x 3
            convolution across its input channels: with E of 190-280 and
            N = 64 the heads' multiply-adds drop about 2.5x.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: Sequence[int],
                 levels: Sequence[str] = LEVELS,
                 with_prior: bool = False,
                 loss_weight: Union[float, Sequence[float]] = 1.0,
                 kernel_size: int = 3,
                 hidden_channels: Optional[int] = None,
                 linear_shortcut: bool = False,
                 reduce_channels: Optional[int] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        levels = check_levels(levels)
        if kernel_size not in (1, 3):
            raise ValueError(f'head.kernel_size={kernel_size!r}: expected 3 '
                             "(the paper's) or 1")
        _check_width('hidden_channels', hidden_channels,
                     'half of each head input')
        _check_width('reduce_channels', reduce_channels, 'heads: no reduction')
        if len(num_classes) != len(levels):
            raise ValueError(f'num_classes {tuple(num_classes)} has '
                             f'{len(num_classes)} entries for levels {levels}')
        if isinstance(loss_weight, (int, float)):
            loss_weight = [float(loss_weight)] * len(levels)
        if len(loss_weight) != len(levels):
            raise ValueError(f'loss_weight {loss_weight} does not match '
                             f'levels {levels}')
        self.in_channels = in_channels
        self.levels = levels
        self.num_classes = tuple(int(n) for n in num_classes)
        self.with_prior = with_prior
        self.kernel_size = int(kernel_size)
        self.loss_weight = tuple(float(w) for w in loss_weight)
        self.heads = nn.ModuleDict()
        #: Per-level 1 x 1 shortcuts (None: off, the paper's heads).
        self.shortcuts = nn.ModuleDict() if linear_shortcut else None
        previous = 0
        for level, n_cls in zip(levels, self.num_classes):
            head_in = in_channels + previous + (n_cls if with_prior else 0)
            hidden = hidden_channels or head_in // 2
            layers = OrderedDict()
            hidden_in = head_in
            if reduce_channels is not None:
                # linear (no activation): a low-rank factor of `hidden`
                layers['reduce'] = nn.Conv2d(head_in, reduce_channels, 1)
                hidden_in = reduce_channels
            layers['hidden'] = nn.Conv2d(hidden_in, hidden, kernel_size,
                                         padding=kernel_size // 2)
            layers['act'] = nn.ReLU(inplace=True)
            layers['conv_seg'] = nn.Conv2d(hidden, n_cls, 1)
            self.heads[level] = nn.Sequential(layers)
            if self.shortcuts is not None:
                # no bias: conv_seg's bias already shifts the logits
                self.shortcuts[level] = nn.Conv2d(head_in, n_cls, 1,
                                                  bias=False)
            previous = n_cls

    @property
    def head_in_channels(self) -> tuple:
        """Input channels of each level's head."""
        return tuple(h[0].in_channels for h in self.heads.values())

    def forward(self,
                feature: torch.Tensor,
                prior: Optional[torch.Tensor] = None,
                prior_keep: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        """Run the cascade.

        Args:
            feature: F of shape (B, in_channels, H, W).
            prior: Integer class ids (B, L, H, W), rows in ``levels`` order;
                required iff ``with_prior``.
            prior_keep: Optional bool (B,): samples whose prior is absent
                (False) get an all-zero one-hot, the "no prior" code of the
                any-window model (a valid one-hot sums to 1).

        Returns:
            dict level name -> logits (B, N_k + 1, H, W).
        """
        if self.with_prior:
            if prior is None:
                raise ValueError('CascadeHeads was built with_prior=True '
                                 'but no prior was given')
            expected = (feature.shape[0], len(self.levels),
                        *feature.shape[-2:])
            if tuple(prior.shape) != expected:
                raise ValueError(f'prior must have shape {expected} (B, L, '
                                 f'H, W), got {tuple(prior.shape)}')
        elif prior is not None:
            raise ValueError('CascadeHeads was built with_prior=False but a '
                             'prior was given')
        outputs: Dict[str, torch.Tensor] = {}
        previous: Optional[torch.Tensor] = None
        for idx, level in enumerate(self.levels):
            parts = [feature]
            if previous is not None:
                parts.append(previous)  # raw, not detached
            if self.with_prior:
                one_hot = self._one_hot(prior[:, idx], idx, feature.dtype)
                if prior_keep is not None:
                    # (B,) -> (B, 1, 1, 1): zero the absent samples' code
                    one_hot = one_hot * prior_keep.view(-1, 1, 1, 1).to(
                        one_hot.dtype)
                parts.append(one_hot)
            x = torch.cat(parts, dim=1)  # (B, head_in, H, W)
            logits = self.heads[level](x)
            if self.shortcuts is not None:
                logits = logits + self.shortcuts[level](x)
            outputs[level] = logits  # (B, N_k + 1, H, W)
            previous = logits
        return outputs

    def _one_hot(self, ids: torch.Tensor, idx: int,
                 dtype: torch.dtype) -> torch.Tensor:
        """(B, H, W) ids -> (B, N_k + 1, H, W) one-hot of ``dtype``.

        Ids are range-checked with a clear error on CPU. On accelerators the
        check would force a device sync every step; there the dataset's
        read-time validation (and scatter's own bounds assertion) applies.
        """
        n_cls = self.num_classes[idx]
        if ids.device.type == 'cpu' and ids.numel() and (
                int(ids.min()) < 0 or int(ids.max()) >= n_cls):
            raise ValueError(
                f'prior of {self.levels[idx]} has ids in '
                f'[{int(ids.min())}, {int(ids.max())}], expected 0..'
                f'{n_cls - 1}')
        batch, height, width = ids.shape
        one_hot = ids.new_zeros((batch, n_cls, height, width), dtype=dtype)
        # (B, 1, H, W) indices -> ones along the class axis
        return one_hot.scatter_(1, ids.long().unsqueeze(1), 1.)

    def loss(self, logits: Dict[str, torch.Tensor],
             gt: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Cross-entropy per level, averaged over all pixels.

        Background (id 0) is an ordinary class, as in the paper.

        Args:
            logits: Output of :meth:`forward`.
            gt: Label ids (B, L, H, W), rows in ``levels`` order.

        Returns:
            dict ``loss_<level>`` (summed by mmengine into the total) and
            ``acc_<level>`` (pixel accuracy in %, not a loss).
        """
        first = logits[self.levels[0]]
        expected = (first.shape[0], len(self.levels), *first.shape[-2:])
        if tuple(gt.shape) != expected:
            raise ValueError(f'gt_sem_seg must stack to {expected} (B, L, H,'
                             f' W), got {tuple(gt.shape)}')
        losses: Dict[str, torch.Tensor] = {}
        for idx, level in enumerate(self.levels):
            target = gt[:, idx].long()  # (B, H, W)
            pred = logits[level]
            losses[f'loss_{level}'] = self.loss_weight[idx] * F.cross_entropy(
                pred.float(), target)
            with torch.no_grad():
                losses[f'acc_{level}'] = (pred.argmax(1) == target).float(
                ).mean() * 100
        return losses
