"""EnMAP spectral-spatial encoder (``docs/design.md``, "EnMAP encoder").

Two transformers read the normalised hyperspectral cube (B, 218, h, w):

* the spatial ViT makes one token per EnMAP pixel, so attention mixes
  locations;
* the spectral ViT makes one token per band (the band's average-pooled
  image), so attention mixes wavelengths.

Both are brought to the S2 grid (x3) by a 3x3 convolution and a pixel
shuffle and fused by two 3x3 convolutions. Only parameters that take part in
the forward pass are created (the original's timm subclass leaves 40.4 M
unused ones, which forces DDP's ``find_unused_parameters``).

Credits: the spectral-spatial design is the H2Crop paper's (Li et al. 2025,
arXiv 2506.06155); its transformer layers are pre-norm ViT blocks
(Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021) taken from
timm's ``Block``.
"""
from collections import OrderedDict
from functools import partial
from typing import List, Optional, Union

import torch
import torch.nn as nn
from einops import rearrange
from mmengine.model import BaseModule
from timm.models.vision_transformer import Block

from h2crop.constants import ENMAP_BANDS, ENMAP_SCALE
from h2crop.models.utils import init_transformer_weights
from h2crop.registry import MODELS

#: LayerNorm of the transformer blocks (timm's ViT default).
_VIT_NORM = partial(nn.LayerNorm, eps=1e-6)


def sinusoid_position_encoding(num_positions: int,
                               embed_dims: int) -> torch.Tensor:
    """Fixed sinusoid table over a 1-D position index.

    ``PE[p, 2i] = sin(p / 10000^(2i/d))`` and ``PE[p, 2i+1] = cos(same)``,
    computed in float64 and returned as float32.

    Args:
        num_positions: Number of positions N.
        embed_dims: Token width d.

    Returns:
        Tensor of shape (N, d).
    """
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (N, 1)
    pair = torch.arange(embed_dims, dtype=torch.float64) // 2  # (d,)
    angle = pos / torch.pow(10000.0, 2 * pair / embed_dims)  # (N, d)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float()


def _make_blocks(embed_dims: int, num_heads: int, num_layers: int,
                 mlp_ratio: float, qkv_bias: bool, drop_rate: float,
                 attn_drop_rate: float,
                 drop_path_rates: List[float]) -> nn.ModuleList:
    """Pre-norm transformer blocks whose attention uses fused SDPA."""
    if embed_dims % num_heads:
        raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                         f'num_heads {num_heads}')
    blocks = nn.ModuleList()
    for i in range(num_layers):
        block = Block(
            dim=embed_dims,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            proj_drop=drop_rate,
            attn_drop=attn_drop_rate,
            drop_path=drop_path_rates[i],
            norm_layer=_VIT_NORM,
            act_layer=nn.GELU)
        # timm enables F.scaled_dot_product_attention unless TIMM_FUSED_ATTN=0;
        # the encoder always wants the fused kernel (same maths, less memory).
        block.attn.fused_attn = True
        blocks.append(block)
    return blocks


class SpatialViT(nn.Module):
    """Transformer over EnMAP pixels (one token per pixel).

    Args:
        in_channels: Spectral bands.
        img_size: Side h = w of the EnMAP grid (tokens = h * w).
        embed_dims: Token width.
        num_heads: Attention heads.
        num_layers: Transformer blocks.
        mlp_ratio: MLP hidden width / embed_dims.
        qkv_bias: Bias in the qkv projection.
        out_channels: Channels after the pixel shuffle.
        upscale: Pixel-shuffle factor (EnMAP pixel -> S2 pixels per side).
        drop_rate: Dropout after attention / MLP projections.
        attn_drop_rate: Attention dropout.
        drop_path_rates: Stochastic depth per block.
    """

    def __init__(self, in_channels: int, img_size: int, embed_dims: int,
                 num_heads: int, num_layers: int, mlp_ratio: float,
                 qkv_bias: bool, out_channels: int, upscale: int,
                 drop_rate: float, attn_drop_rate: float,
                 drop_path_rates: List[float]) -> None:
        super().__init__()
        self.img_size = img_size
        self.token_embed = nn.Conv2d(in_channels, embed_dims, kernel_size=1)
        self.register_buffer(
            'pos_embed',
            sinusoid_position_encoding(img_size * img_size, embed_dims),
            persistent=False)  # (h*w, D)
        self.blocks = _make_blocks(embed_dims, num_heads, num_layers,
                                   mlp_ratio, qkv_bias, drop_rate,
                                   attn_drop_rate, drop_path_rates)
        self.out_conv = nn.Conv2d(
            embed_dims, out_channels * upscale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale)
        init_transformer_weights(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, out_channels, h*upscale, w*upscale)."""
        h, w = x.shape[-2:]
        x = self.token_embed(x)  # (B, D, h, w)
        x = rearrange(x, 'b d h w -> b (h w) d')  # row-major pixel tokens
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)  # (B, h*w, D)
        x = rearrange(x, 'b (h w) d -> b d h w', h=h, w=w)
        x = self.out_conv(x)  # (B, out*s*s, h, w)
        return self.pixel_shuffle(x)  # (B, out, h*s, w*s)


class SpectralViT(nn.Module):
    """Transformer over EnMAP bands (one token per band).

    The token of a band is its image average-pooled by ``pool_size`` and
    flattened, so the token width is (img_size / pool_size)^2.

    Args:
        in_channels: Spectral bands (= tokens).
        img_size: Side of the EnMAP grid.
        pool_size: Average-pooling window and stride.
        num_heads: Attention heads.
        num_layers: Transformer blocks.
        mlp_ratio: MLP hidden width / token width.
        qkv_bias: Bias in the qkv projection.
        out_channels: Channels after the pixel shuffle.
        upscale: Pixel-shuffle factor.
        drop_rate: Dropout after attention / MLP projections.
        attn_drop_rate: Attention dropout.
        drop_path_rates: Stochastic depth per block.
    """

    def __init__(self, in_channels: int, img_size: int, pool_size: int,
                 num_heads: int, num_layers: int, mlp_ratio: float,
                 qkv_bias: bool, out_channels: int, upscale: int,
                 drop_rate: float, attn_drop_rate: float,
                 drop_path_rates: List[float]) -> None:
        super().__init__()
        if img_size % pool_size:
            raise ValueError(f'EnMAP img_size {img_size} is not a multiple '
                             f'of the spectral pool_size {pool_size}')
        self.img_size = img_size
        self.embed_dims = (img_size // pool_size)**2
        self.pool = nn.AvgPool2d(pool_size, pool_size)
        self.register_buffer(
            'pos_embed',
            sinusoid_position_encoding(in_channels, self.embed_dims),
            persistent=False)  # (C, D)
        self.blocks = _make_blocks(self.embed_dims, num_heads, num_layers,
                                   mlp_ratio, qkv_bias, drop_rate,
                                   attn_drop_rate, drop_path_rates)
        self.grid_proj = nn.Linear(self.embed_dims, img_size * img_size)
        self.out_conv = nn.Conv2d(
            in_channels, out_channels * upscale**2, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(upscale)
        init_transformer_weights(self.blocks)
        init_transformer_weights(self.grid_proj)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, out_channels, h*upscale, w*upscale)."""
        h, w = x.shape[-2:]
        x = self.pool(x)  # (B, C, h/p, w/p)
        x = rearrange(x, 'b c h w -> b c (h w)')  # band tokens (B, C, D)
        x = x + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            x = block(x)  # (B, C, D)
        x = self.grid_proj(x)  # (B, C, h*w)
        x = rearrange(x, 'b c (h w) -> b c h w', h=h, w=w)
        x = self.out_conv(x)  # (B, out*s*s, h, w)
        return self.pixel_shuffle(x)  # (B, out, h*s, w*s)


@MODELS.register_module()
class EnMAPSpectralSpatialEncoder(BaseModule):
    """Spatial + spectral transformer encoder of the EnMAP cube.

    Args:
        in_channels: Spectral bands (218).
        img_size: Side of the EnMAP grid (64 for a 192-px S2 tile).
        upscale: S2 pixels per EnMAP pixel along one axis (3).
        spatial_vit: ``embed_dims``, ``num_heads``, ``num_layers``,
            ``mlp_ratio``, ``qkv_bias``, ``out_channels`` of the spatial ViT.
        spectral_vit: ``pool_size``, ``num_heads``, ``num_layers``,
            ``mlp_ratio``, ``qkv_bias``, ``out_channels`` of the spectral
            ViT (its token width is derived: (img_size / pool_size)^2).
        out_channels: Channels of the fused output.
        drop_rate: Dropout after the blocks' projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth, rising linearly over the blocks
            of each ViT.
        init_cfg: mmengine init config.

    Shapes:
        input (B, in_channels, img_size, img_size) ->
        output (B, out_channels, img_size*upscale, img_size*upscale).
    """

    _SPATIAL_DEFAULTS = dict(embed_dims=768, num_heads=12, num_layers=6,
                             mlp_ratio=4., qkv_bias=True, out_channels=128)
    _SPECTRAL_DEFAULTS = dict(pool_size=4, num_heads=8, num_layers=6,
                              mlp_ratio=4., qkv_bias=True, out_channels=128)
    #: Keys of the plain-dict arguments (:mod:`h2crop.engine.option_check`).
    dict_arg_keys = dict(spatial_vit=tuple(_SPATIAL_DEFAULTS),
                         spectral_vit=tuple(_SPECTRAL_DEFAULTS))

    def __init__(self,
                 in_channels: int = ENMAP_BANDS,
                 img_size: int = 64,
                 upscale: int = ENMAP_SCALE,
                 spatial_vit: Optional[dict] = None,
                 spectral_vit: Optional[dict] = None,
                 out_channels: int = 128,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        s_cfg = self._merge(self._SPATIAL_DEFAULTS, spatial_vit, 'spatial_vit')
        p_cfg = self._merge(self._SPECTRAL_DEFAULTS, spectral_vit,
                            'spectral_vit')
        self.in_channels = in_channels
        self.img_size = img_size
        self.upscale = upscale
        self._out_channels = out_channels
        common = dict(in_channels=in_channels, img_size=img_size,
                      upscale=upscale, drop_rate=drop_rate,
                      attn_drop_rate=attn_drop_rate)
        self.spatial_vit = SpatialViT(
            **common, **s_cfg,
            drop_path_rates=self._rates(drop_path_rate, s_cfg['num_layers']))
        self.spectral_vit = SpectralViT(
            **common, **p_cfg,
            drop_path_rates=self._rates(drop_path_rate, p_cfg['num_layers']))
        fused = s_cfg['out_channels'] + p_cfg['out_channels']
        self.fusion = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(fused, out_channels, kernel_size=3, padding=1),
            act=nn.ReLU(),
            conv2=nn.Conv2d(out_channels, out_channels, kernel_size=3,
                            padding=1)))

    @staticmethod
    def _merge(defaults: dict, given: Optional[dict], name: str) -> dict:
        cfg = dict(defaults)
        unknown = set(given or {}) - set(defaults)
        if unknown:
            raise TypeError(f'{name}: unknown keys {sorted(unknown)}; '
                            f'expected some of {sorted(defaults)}')
        cfg.update(given or {})
        return cfg

    @staticmethod
    def _rates(drop_path_rate: float, depth: int) -> List[float]:
        if depth <= 1:
            return [drop_path_rate] * depth
        return [drop_path_rate * i / (depth - 1) for i in range(depth)]

    @property
    def out_channels(self) -> int:
        """Channels of the encoder output."""
        return self._out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode an EnMAP cube.

        Args:
            x: Normalised cube (B, in_channels, img_size, img_size).

        Returns:
            Tensor (B, out_channels, img_size*upscale, img_size*upscale).
        """
        expected = (self.in_channels, self.img_size, self.img_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f'EnMAPSpectralSpatialEncoder expects (B, {expected[0]}, '
                f'{expected[1]}, {expected[2]}), got {tuple(x.shape)}')
        spatial = self.spatial_vit(x)  # (B, Cs, 3h, 3w)
        spectral = self.spectral_vit(x)  # (B, Cp, 3h, 3w)
        return self.fusion(torch.cat([spatial, spectral], dim=1))
