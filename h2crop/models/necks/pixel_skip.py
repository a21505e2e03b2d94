"""Full-resolution per-pixel skip of the S2 series and the EnMAP spectrum.

An opt-in addition to the paper's model (``model.pixel_skip``; off in the
paper configs). The paper's feature F reaches a pixel only through

* the S2 encoder, whose 3-D patch embedding works on 4 x 4 pixel patches,
  so F is decoded from 1/4 resolution and bilinearly upsampled: the
  signature of a single pixel, and field edges, are blurred over 4 px;
* the EnMAP encoder, whose spatial ViT mixes pixels and whose spectral ViT
  turns each band into one token of a pooled image: a narrow absorption
  feature of one pixel's spectrum has to survive attention over the whole
  tile and a pixel shuffle.

This module gives the heads each pixel's own signature at full resolution:
a pixel-wise MLP (1 x 1 convolutions) over the S2 months of the pixel
(T x 10 z-scores) and another over the EnMAP spectrum of its 30 m cell
(218 z-scores, repeated over the cell's 3 x 3 S2 pixels). Its output is
concatenated to F before the cascade heads, whose 3 x 3 hidden convolution
then combines spatial context (F) with the pixel's own evidence. It is the
classical per-pixel classifier placed inside the network, so the model can
do at least what a per-pixel MLP does.
"""
from collections import OrderedDict
from typing import List, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from h2crop.constants import ENMAP_BANDS, ENMAP_SCALE, S2_BANDS
from h2crop.registry import MODELS


def pixel_mlp(in_channels: int, embed_dims: int, norm_cfg: dict
              ) -> nn.Sequential:
    """Conv1x1 -> norm -> ReLU -> Conv1x1 -> norm -> ReLU (per pixel)."""
    return nn.Sequential(OrderedDict(
        fc1=nn.Conv2d(in_channels, embed_dims, 1, bias=False),
        norm1=build_norm_layer(norm_cfg, embed_dims)[1],
        act1=nn.ReLU(inplace=True),
        fc2=nn.Conv2d(embed_dims, embed_dims, 1, bias=False),
        norm2=build_norm_layer(norm_cfg, embed_dims)[1],
        act2=nn.ReLU(inplace=True)))


@MODELS.register_module()
class PixelSkip(BaseModule):
    """Per-pixel embeddings of the S2 series and the EnMAP spectrum.

    Args:
        num_frames: Months T of the S2 input (derived by the segmentor).
        embed_dims: Width of the S2 pixel embedding.
        enmap_embed_dims: Width of the EnMAP pixel embedding; derived as
            None (no EnMAP part) by the segmentor when EnMAP is not a
            modality.
        in_channels: S2 bands per month.
        enmap_channels: EnMAP bands.
        upscale: S2 pixels per EnMAP pixel along one axis.
        norm_cfg: Norm layer; default ``dict(type='BN')``.
        absent_embedding: Learn an "EnMAP absent" vector that stands in for
            the EnMAP embedding of samples without EnMAP (set by the
            segmentor for any-window models, see
            :mod:`h2crop.models.segmentors.any_window`).
        init_cfg: mmengine init config.

    Shapes:
        s2: (B, T, in_channels, H, W); enmap: (B, enmap_channels, H/3,
        W/3) -> (B, out_channels, H, W).
    """

    def __init__(self,
                 num_frames: int,
                 embed_dims: int = 64,
                 enmap_embed_dims: Optional[int] = 64,
                 in_channels: int = S2_BANDS,
                 enmap_channels: int = ENMAP_BANDS,
                 upscale: int = ENMAP_SCALE,
                 norm_cfg: Optional[dict] = None,
                 absent_embedding: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        norm_cfg = norm_cfg or dict(type='BN')
        for name, value in (('num_frames', num_frames),
                            ('embed_dims', embed_dims)):
            if int(value) < 1:
                raise ValueError(f'pixel_skip.{name}={value}: expected >= 1')
        self.num_frames = int(num_frames)
        self.in_channels = int(in_channels)
        self.embed_dims = int(embed_dims)
        self.upscale = int(upscale)
        self.s2_mlp = pixel_mlp(self.num_frames * self.in_channels,
                                self.embed_dims, norm_cfg)
        self.enmap_embed_dims = enmap_embed_dims
        self.enmap_mlp = None
        if enmap_embed_dims is not None:
            if int(enmap_embed_dims) < 1:
                raise ValueError(f'pixel_skip.enmap_embed_dims='
                                 f'{enmap_embed_dims}: expected >= 1 or None')
            self.enmap_mlp = pixel_mlp(int(enmap_channels),
                                       int(enmap_embed_dims), norm_cfg)
        self.absent_enmap = None
        if absent_embedding and self.enmap_mlp is not None:
            self.absent_enmap = nn.Parameter(torch.zeros(
                int(enmap_embed_dims)))

    @property
    def out_channels(self) -> int:
        """Channels of the output."""
        return self.embed_dims + (self.enmap_embed_dims or 0)

    def forward(self, s2: torch.Tensor,
                enmap: Optional[torch.Tensor] = None,
                enmap_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Embed every pixel.

        Args:
            s2: Normalised series (B, T, C, H, W).
            enmap: Normalised cube (B, 218, H/3, W/3); required iff the
                module was built with an EnMAP part, unless it has the
                absent embedding (then None means "no EnMAP").
            enmap_keep: bool (B,), samples whose EnMAP is used; the others
                get the absent embedding (needs ``absent_embedding``).

        Returns:
            (B, out_channels, H, W).
        """
        absent_ok = self.absent_enmap is not None
        if self.enmap_mlp is None and (enmap is not None or
                                       enmap_keep is not None):
            raise ValueError('PixelSkip was built with enmap_embed_dims='
                             'None but enmap is given')
        if self.enmap_mlp is not None and not absent_ok and (
                enmap is None or enmap_keep is not None):
            raise ValueError(
                'PixelSkip was built with enmap_embed_dims='
                f'{self.enmap_embed_dims} but enmap is missing (an absent '
                'EnMAP needs absent_embedding=True)')
        batch, height, width = s2.shape[0], *s2.shape[-2:]
        x = rearrange(s2, 'b t c h w -> b (t c) h w')  # months x bands
        parts = [self.s2_mlp(x)]  # (B, E, H, W)
        if self.enmap_mlp is not None:
            absent = None
            if absent_ok:
                absent = self.absent_enmap.view(1, -1, 1, 1)  # (1, E_h, 1, 1)
            if enmap is None:
                y = absent.expand(batch, -1, height, width).to(x.dtype)
            else:
                keep = None
                if enmap_keep is not None:
                    keep = enmap_keep.view(batch, 1, 1, 1)
                    # dropped cubes become zeros before the MLP, so that
                    # they cannot reach the kept samples through the batch
                    # statistics of the norm layers in training
                    enmap = torch.where(keep, enmap, enmap.new_zeros(()))
                y = self.enmap_mlp(enmap)  # (B, E_h, h, w)
                # each 30 m cell covers upscale x upscale S2 pixels
                y = F.interpolate(y, scale_factor=self.upscale,
                                  mode='nearest')
                if tuple(y.shape[-2:]) != (height, width):
                    raise ValueError(
                        f'EnMAP grid {tuple(enmap.shape[-2:])} x '
                        f'{self.upscale} does not cover the S2 grid '
                        f'{(height, width)}')
                if keep is not None:
                    y = torch.where(keep, y, absent.to(y.dtype))
            parts.append(y)  # (B, E_h, H, W)
        return torch.cat(parts, dim=1)
