"""Multi-scale fusion decoder of the S2 features.

See ``docs/design.md``, "Fusion decoder", and the H2Crop paper.
"""
from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from h2crop.registry import MODELS


def conv_norm_act_conv(in_channels: int, mid_channels: int,
                       out_channels: int, norm_cfg: dict) -> nn.Sequential:
    """Conv3x3 -> norm -> ReLU -> Conv3x3 (both convolutions with bias).

    Module names: ``0.conv``, ``0.bn``, ``0.act``, ``1``.
    """
    first = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=True),
        bn=build_norm_layer(norm_cfg, mid_channels)[1],
        act=nn.ReLU(inplace=True)))
    return nn.Sequential(first,
                         nn.Conv2d(mid_channels, out_channels, 3, padding=1))


@MODELS.register_module()
class FusionDecoder(BaseModule):
    """U-Net-like decoder fusing the deepest S2 feature with three skips.

    Starting from ``encoder_features`` resized to (H/32, W/32), each step
    upsamples x2, resizes the skip to match, and applies
    Conv3x3(cat -> C) -> BN -> ReLU -> Conv3x3(C -> C/2), where C starts at
    ``in_channels`` and halves per step. An output block keeps the width and
    the result is resized to (H, W). With ``enmap_channels`` an EnMAP branch
    Conv3x3 -> BN -> ReLU -> Conv3x3 is concatenated.

    Args:
        in_channels: Channels of ``encoder_features`` (derived from the S2
            encoder by the segmentor).
        skip_channels: Channels of ``features_list[0..n-1]`` used as skips,
            shallow to deep (derived from the S2 encoder).
        enmap_channels: Channels of the EnMAP feature, or None without EnMAP.
        norm_cfg: Norm layer config; default ``dict(type='BN')``
            (``dict(type='SyncBN')`` under DDP).
        align_corners: Of every bilinear resize.
        init_cfg: mmengine init config.

    Shapes:
        features_list[i]: (B, skip_channels[i], H_i, W_i);
        encoder_features: (B, in_channels, h, w);
        enmap_feature: (B, enmap_channels, H, W);
        output: (B, out_channels, H, W).
    """

    def __init__(self,
                 in_channels: int,
                 skip_channels: Sequence[int],
                 enmap_channels: Optional[int] = None,
                 norm_cfg: Optional[dict] = None,
                 align_corners: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if norm_cfg is None:
            norm_cfg = dict(type='BN')
        num_steps = len(skip_channels)
        if in_channels % 2**num_steps:
            raise ValueError(f'in_channels {in_channels} must be divisible '
                             f'by 2**{num_steps} (one halving per skip)')
        self.in_channels = in_channels
        self.skip_channels = tuple(skip_channels)
        self.enmap_channels = enmap_channels
        self.align_corners = align_corners
        self.fuse_layers = nn.ModuleList()
        width = in_channels
        # deepest skip first
        for skip in reversed(self.skip_channels):
            self.fuse_layers.append(
                conv_norm_act_conv(width + skip, width, width // 2, norm_cfg))
            width //= 2
        self.decoder_channels = width
        self.out_layer = conv_norm_act_conv(width, width, width, norm_cfg)
        if enmap_channels is not None:
            self.enmap_embed = conv_norm_act_conv(enmap_channels,
                                                  enmap_channels,
                                                  enmap_channels, norm_cfg)
        else:
            self.enmap_embed = None

    @property
    def out_channels(self) -> int:
        """Channels of the output feature F."""
        return self.decoder_channels + (self.enmap_channels or 0)

    def _resize(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        return F.interpolate(x, size=size, mode='bilinear',
                             align_corners=self.align_corners)

    def forward(self,
                features_list: Sequence[torch.Tensor],
                encoder_features: torch.Tensor,
                out_size: Tuple[int, int],
                enmap_feature: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Decode to full resolution.

        Args:
            features_list: S2 encoder features, shallow to deep (at least
                ``len(skip_channels)`` of them).
            encoder_features: (B, in_channels, h, w).
            out_size: (H, W) of the S2 input.
            enmap_feature: (B, enmap_channels, H, W) when built with EnMAP.

        Returns:
            F of shape (B, out_channels, H, W).
        """
        if (enmap_feature is None) != (self.enmap_embed is None):
            raise ValueError(
                'FusionDecoder was built with enmap_channels='
                f'{self.enmap_channels} but enmap_feature is '
                f'{"missing" if enmap_feature is None else "given"}')
        height, width = out_size
        x = self._resize(encoder_features, (height // 32, width // 32))
        num_steps = len(self.fuse_layers)
        for step, layer in enumerate(self.fuse_layers):
            x = F.interpolate(x, scale_factor=2, mode='bilinear',
                              align_corners=self.align_corners)
            skip = features_list[num_steps - 1 - step]
            skip = self._resize(skip, tuple(x.shape[-2:]))
            x = layer(torch.cat([x, skip], dim=1))  # (B, C/2, h', w')
        x = self.out_layer(x)
        x = self._resize(x, (height, width))  # (B, C_out, H, W)
        if self.enmap_embed is not None:
            x = torch.cat([x, self.enmap_embed(enmap_feature)], dim=1)
        return x
