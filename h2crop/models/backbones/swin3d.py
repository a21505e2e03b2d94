"""Temporal Video-Swin encoder for Sentinel-2 monthly series (AgriFM variant).

The encoder (``docs/design.md``, "S2 encoder") is a 3-D patch embedding,
four stages of (shifted) 3-D window attention and a patch merging between
stages that halves H and W and averages ``Dt`` temporal phases. Module
names match the AgriFM checkpoint layout (``patch_emd.proj``,
``backbone.layers.{i}.blocks.{j}``, ``backbone.layers.{i}.downsample``,
``backbone.norm``) so that pretrained weights load by name.

Every (B, C, D, H, W) feature leaves the encoder flattened to (B, C*D, H, W)
with channel index ``c * D + d``.

Credits: the design follows the Video Swin Transformer (Liu et al., "Video
Swin Transformer", CVPR 2022; mmaction2's ``SwinTransformer3D`` was read as
a reference) in the variant of AgriFM, whose weights and key layout it keeps,
as used by the H2Crop paper (Li et al. 2025, arXiv 2506.06155). The code is
written for this project.
"""
import math
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from einops import rearrange, reduce
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from timm.layers import DropPath, Mlp

from h2crop.models.utils import init_transformer_weights
from h2crop.registry import MODELS, WEIGHT_INITIALIZERS

Triple = Tuple[int, int, int]

REL_POS_INDEX_MODES = ('original', 'exact')

# Value added to attention logits between tokens that come from different
# regions of a cyclically shifted window (Video Swin uses -100, not -inf).
_SHIFT_MASK_VALUE = -100.0


def _triple(value: Union[int, Sequence[int]], name: str) -> Triple:
    """Turn an int or a 3-sequence into a tuple of three ints."""
    if isinstance(value, int):
        return (value, value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 3:
        raise ValueError(f'{name} must have 3 entries (D, H, W), got {value}')
    return value  # type: ignore[return-value]


def effective_window(feat_size: Triple, window_size: Triple,
                     shift_size: Triple) -> Tuple[Triple, Triple]:
    """Apply the window shrink rule.

    On any axis where the feature is not larger than the window, the window
    becomes the feature size and the shift on that axis becomes 0.

    Args:
        feat_size: (D, H, W) of the feature.
        window_size: Configured (Wd, Wh, Ww).
        shift_size: Configured (Sd, Sh, Sw).

    Returns:
        The effective window and shift.
    """
    window = list(window_size)
    shift = list(shift_size)
    for axis in range(3):
        if feat_size[axis] <= window_size[axis]:
            window[axis] = feat_size[axis]
            shift[axis] = 0
    return tuple(window), tuple(shift)  # type: ignore[return-value]


def relative_position_index(window: Triple,
                            table_window: Optional[Triple] = None
                            ) -> torch.Tensor:
    """Index into a 3-D relative position bias table for one window.

    Args:
        window: (Wd, Wh, Ww) of the window whose tokens attend to each other.
        table_window: Window size the table was built for (its rows are
            (2Td-1)(2Th-1)(2Tw-1)); defaults to ``window``.

    Returns:
        Long tensor (N, N), N = Wd*Wh*Ww, tokens in (d, h, w) row-major order.
    """
    table_window = table_window or window
    grids = torch.meshgrid(*[torch.arange(n) for n in window], indexing='ij')
    coords = torch.stack([g.flatten() for g in grids])  # (3, N)
    rel = coords[:, :, None] - coords[:, None, :]  # (3, N, N)
    td, th, tw = table_window
    rel_d = rel[0] + td - 1
    rel_h = rel[1] + th - 1
    rel_w = rel[2] + tw - 1
    return rel_d * (2 * th - 1) * (2 * tw - 1) + rel_h * (2 * tw - 1) + rel_w


@lru_cache(maxsize=64)
def _shift_mask(padded: Triple, window: Triple, shift: Triple,
                device: torch.device) -> torch.Tensor:
    """Attention mask of a cyclically shifted window partition.

    Tokens that landed in the same window only because of the cyclic roll
    (they come from different regions of the padded feature) get
    ``_SHIFT_MASK_VALUE``; all others 0.

    Args:
        padded: (Dp, Hp, Wp), multiples of ``window``.
        window: Effective window size.
        shift: Effective shift size (0 on axes that are not shifted).
        device: Device of the mask.

    Returns:
        Float tensor (nW, N, N), nW windows per sample, N tokens per window.
    """
    labels = []
    for size, win, sft in zip(padded, window, shift):
        # Region id along one axis: [0, P-win), [P-win, P-sft), [P-sft, P).
        axis_label = torch.zeros(size, dtype=torch.long)
        if sft > 0:
            axis_label[size - win:size - sft] = 1
            axis_label[size - sft:] = 2
        labels.append(axis_label)
    region = (labels[0][:, None, None] * 9 + labels[1][None, :, None] * 3 +
              labels[2][None, None, :])  # (Dp, Hp, Wp)
    region = rearrange(
        region, '(nd wd) (nh wh) (nw ww) -> (nd nh nw) (wd wh ww)',
        wd=window[0], wh=window[1], ww=window[2])  # (nW, N)
    differs = region[:, None, :] != region[:, :, None]  # (nW, N, N)
    mask = torch.zeros(differs.shape, dtype=torch.float32)
    mask.masked_fill_(differs, _SHIFT_MASK_VALUE)
    return mask.to(device)


class PatchEmbed3D(nn.Module):
    """3-D patch embedding: zero padding + Conv3d, no norm.

    Args:
        in_channels: Input bands.
        embed_dims: Output channels.
        patch_size: (Pt, Ph, Pw) kernel and stride.
    """

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: Triple) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_channels, embed_dims, kernel_size=patch_size,
                              stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed patches.

        Args:
            x: (B, C, T, H, W).

        Returns:
            (B, embed_dims, D, H', W') with D = ceil(T / Pt) etc.
        """
        _, _, t, h, w = x.shape
        pt, ph, pw = self.patch_size
        pad = (0, (-w) % pw, 0, (-h) % ph, 0, (-t) % pt)
        if any(pad):
            x = F.pad(x, pad)
        return self.proj(x)


class WindowAttention3D(nn.Module):
    """Multi-head self attention inside 3-D windows with relative bias.

    Uses ``scaled_dot_product_attention`` with the relative position bias
    (plus the shifted-window mask) as an additive ``attn_mask``.

    Args:
        embed_dims: Channels C.
        num_heads: Heads.
        window_size: Full window (Wd, Wh, Ww); the bias table has
            (2Wd-1)(2Wh-1)(2Ww-1) rows.
        qkv_bias: Bias in the qkv projection.
        attn_drop: Dropout on attention weights.
        proj_drop: Dropout after the output projection.
        rel_pos_index_mode: How a shrunken window indexes the table:
            ``'original'`` takes the first N rows and columns of the full
            window's index (as the original code; geometrically wrong when
            H or W shrink), ``'exact'`` uses the true relative offsets.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: Triple,
                 qkv_bias: bool = True, attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 rel_pos_index_mode: str = 'original') -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        if rel_pos_index_mode not in REL_POS_INDEX_MODES:
            raise ValueError(f'rel_pos_index_mode must be one of '
                             f'{REL_POS_INDEX_MODES}, got '
                             f'{rel_pos_index_mode!r}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.window_size = window_size
        self.rel_pos_index_mode = rel_pos_index_mode
        wd, wh, ww = window_size
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1),
                        num_heads))
        # Not persistent: state dicts carry only the AgriFM parameters.
        self.register_buffer('relative_position_index',
                             relative_position_index(window_size),
                             persistent=False)
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self._exact_index_cache: Dict[Triple, torch.Tensor] = {}

    def _bias_index(self, window: Triple) -> torch.Tensor:
        """(N, N) table index for the (possibly shrunken) window."""
        n = math.prod(window)
        if window == self.window_size or self.rel_pos_index_mode == \
                'original':
            return self.relative_position_index[:n, :n]
        index = self._exact_index_cache.get(window)
        if index is None or index.device != \
                self.relative_position_index.device:
            index = relative_position_index(window, self.window_size).to(
                self.relative_position_index.device)
            self._exact_index_cache[window] = index
        return index

    def forward(self, x: torch.Tensor, window: Triple,
                shift_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attend within windows.

        Args:
            x: (B*nW, N, C) tokens of each window.
            window: Effective window size, prod(window) == N.
            shift_mask: (nW, N, N) additive mask of shifted windows, or None.

        Returns:
            (B*nW, N, C).
        """
        bnw, n, c = x.shape
        qkv = rearrange(self.qkv(x), 'b n (three h e) -> three b h n e',
                        three=3, h=self.num_heads)  # (3, B*nW, nH, N, hd)
        q, k, v = qkv.unbind(0)
        index = self._bias_index(window)
        bias = self.relative_position_bias_table[index.reshape(-1)]
        bias = rearrange(bias, '(i j) h -> h i j', i=n)  # (nH, N, N)
        if shift_mask is not None:
            nw = shift_mask.shape[0]
            # (B, nW, nH, N, hd): windows of one sample share the mask.
            q, k, v = (t.reshape(bnw // nw, nw, self.num_heads, n, -1)
                       for t in (q, k, v))
            mask = bias.unsqueeze(0) + shift_mask.unsqueeze(1)  # (nW,nH,N,N)
        else:
            mask = bias  # (nH, N, N), broadcast over windows
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask.to(q.dtype),
            dropout_p=self.attn_drop if self.training else 0.)
        out = out.reshape(bnw, self.num_heads, n, -1)  # (B*nW, nH, N, hd)
        out = rearrange(out, 'b h n e -> b n (h e)')  # (B*nW, N, C)
        return self.proj_drop(self.proj(out))


class SwinBlock3D(nn.Module):
    """Pre-norm (shifted) window attention block + MLP.

    Args:
        embed_dims: Channels C.
        num_heads: Heads.
        window_size: Full window size.
        shift: Whether this block uses the shifted partition.
        mlp_ratio: Hidden/C ratio of the MLP.
        qkv_bias: Bias in qkv.
        drop: Dropout after projections.
        attn_drop: Attention dropout.
        drop_path: Stochastic depth rate of this block.
        rel_pos_index_mode: See :class:`WindowAttention3D`.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: Triple,
                 shift: bool, mlp_ratio: float = 4., qkv_bias: bool = True,
                 drop: float = 0., attn_drop: float = 0.,
                 drop_path: float = 0.,
                 rel_pos_index_mode: str = 'original') -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size: Triple = tuple(  # type: ignore[assignment]
            w // 2 if shift else 0 for w in window_size)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = WindowAttention3D(
            embed_dims, num_heads, window_size, qkv_bias=qkv_bias,
            attn_drop=attn_drop, proj_drop=drop,
            rel_pos_index_mode=rel_pos_index_mode)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(in_features=embed_dims,
                       hidden_features=int(embed_dims * mlp_ratio),
                       act_layer=nn.GELU, drop=drop)

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        """Window attention on (B, D, H, W, C) -> (B, D, H, W, C)."""
        _, d, h, w, _ = x.shape
        window, shift = effective_window((d, h, w), self.window_size,
                                         self.shift_size)
        x = self.norm1(x)
        # Zero-pad after the norm to multiples of the window (the padded
        # tokens take part in attention, as in the original).
        pads = [(-size) % win for size, win in zip((d, h, w), window)]
        if any(pads):
            x = F.pad(x, (0, 0, 0, pads[2], 0, pads[1], 0, pads[0]))
        dp, hp, wp = d + pads[0], h + pads[1], w + pads[2]
        shifted = any(s > 0 for s in shift)
        if shifted:
            x = torch.roll(x, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
            mask = _shift_mask((dp, hp, wp), window, shift, x.device)
        else:
            mask = None
        windows = rearrange(
            x, 'b (nd wd) (nh wh) (nw ww) c -> (b nd nh nw) (wd wh ww) c',
            wd=window[0], wh=window[1], ww=window[2])  # (B*nW, N, C)
        windows = self.attn(windows, window, mask)
        x = rearrange(
            windows,
            '(b nd nh nw) (wd wh ww) c -> b (nd wd) (nh wh) (nw ww) c',
            nd=dp // window[0], nh=hp // window[1], nw=wp // window[2],
            wd=window[0], wh=window[1])  # (B, Dp, Hp, Wp, C)
        if shifted:
            x = torch.roll(x, shifts=shift, dims=(1, 2, 3))
        return x[:, :d, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, D, H, W, C). Returns: (B, D, H, W, C)."""
        x = x + self.drop_path(self._attention(x))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging3D(nn.Module):
    """Halve H and W, average ``Dt`` temporal phases, then 4C -> 2C.

    Args:
        embed_dims: Input channels C.
        step: (Dt, Ht, Wt) downsampling step.
    """

    def __init__(self, embed_dims: int, step: Triple) -> None:
        super().__init__()
        self.step = step
        self.norm = nn.LayerNorm(4 * embed_dims)
        self.reduction = nn.Linear(4 * embed_dims, 2 * embed_dims, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, D, H, W, C). Returns: (B, D', H', W', 2C)."""
        _, d, h, w, _ = x.shape
        dt, ht, wt = self.step
        pad_d = (-d) % dt if dt >= 2 else 0
        if h % 2 or w % 2 or pad_d:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2, 0, pad_d))
        if dt >= 2:
            x = reduce(x, 'b (d dt) h w c -> b d h w c', 'mean',
                       dt=dt)  # (B, Dp/Dt, Hp, Wp, C)
        if (ht, wt) == (2, 2):
            # Phase (h, w) = (hp, wp) lands in slot hp + 2*wp of the 4C:
            # order (0,0), (1,0), (0,1), (1,1).
            x = rearrange(x, 'b d (h hp) (w wp) c -> b d h w (wp hp c)',
                          hp=2, wp=2)  # (B, D', H/2, W/2, 4C)
            return self.reduction(self.norm(x))
        h_off = 1 if ht > 1 else 0
        w_off = 1 if wt > 1 else 0
        phases = []
        # Spatial phases (h, w) in the order (0,0), (1,0), (0,1), (1,1).
        for hs, ws in ((0, 0), (h_off, 0), (0, w_off), (h_off, w_off)):
            phases.append(x[:, :, hs::ht, ws::wt])  # (B, D', H', W', C)
        x = torch.cat(phases, dim=-1)  # (B, D', H', W', 4C)
        return self.reduction(self.norm(x))


class SwinStage3D(nn.Module):
    """One stage: ``depth`` blocks (shift on odd ones) + optional merging.

    Args:
        embed_dims: Channels of the stage.
        depth: Number of blocks.
        num_heads: Heads.
        window_size: Full window size.
        drop_path: Per-block stochastic depth rates.
        downsample_step: (Dt, Ht, Wt) of the merging after the stage, or
            None for the last stage.
        with_cp: Activation checkpointing per block.
        **block_kwargs: Forwarded to :class:`SwinBlock3D`.
    """

    def __init__(self, embed_dims: int, depth: int, num_heads: int,
                 window_size: Triple, drop_path: Sequence[float],
                 downsample_step: Optional[Triple], with_cp: bool = False,
                 **block_kwargs) -> None:
        super().__init__()
        self.with_cp = with_cp
        self.blocks = nn.ModuleList([
            SwinBlock3D(embed_dims, num_heads, window_size, shift=bool(i % 2),
                        drop_path=drop_path[i], **block_kwargs)
            for i in range(depth)
        ])
        self.downsample = (PatchMerging3D(embed_dims, downsample_step)
                           if downsample_step is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, D, H, W, C). Returns: (B, D', H', W', C')."""
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class SwinBackbone3D(nn.Module):
    """Stages and final norm (the ``backbone.*`` part of AgriFM weights)."""

    def __init__(self, embed_dims: int, depths: Sequence[int],
                 num_heads: Sequence[int], window_size: Triple,
                 downsample_steps: Sequence[Triple], drop_rate: float,
                 drop_path_rate: float, with_cp: bool,
                 **block_kwargs) -> None:
        super().__init__()
        self.pos_drop = nn.Dropout(drop_rate)
        rates = torch.linspace(0, drop_path_rate, sum(depths),
                               device='cpu').tolist()
        self.layers = nn.ModuleList()
        start = 0
        for i, depth in enumerate(depths):
            self.layers.append(
                SwinStage3D(
                    embed_dims * 2**i, depth, num_heads[i], window_size,
                    drop_path=rates[start:start + depth],
                    downsample_step=(downsample_steps[i]
                                     if i < len(depths) - 1 else None),
                    with_cp=with_cp, drop=drop_rate, **block_kwargs))
            start += depth
        self.num_features = embed_dims * 2**(len(depths) - 1)
        self.norm = nn.LayerNorm(self.num_features)


def derive_downsample_steps(num_frames: int, patch_t: int,
                            num_merges: int) -> Tuple[Triple, ...]:
    """Per-merge (Dt, 2, 2): Dt = 2 while the temporal depth exceeds 1.

    Args:
        num_frames: Input months T.
        patch_t: Temporal patch size.
        num_merges: Number of merging layers (stages - 1).
    """
    depth = math.ceil(num_frames / patch_t)
    steps = []
    for _ in range(num_merges):
        dt = 2 if depth > 1 else 1
        steps.append((dt, 2, 2))
        depth = math.ceil(depth / dt)
    return tuple(steps)


@MODELS.register_module()
class S2TemporalSwin(BaseModule):
    """Sentinel-2 temporal Video-Swin encoder (AgriFM-compatible names).

    Args:
        in_channels: Bands per month.
        embed_dims: Channels after the patch embedding (doubles per stage).
        patch_size: (Pt, Ph, Pw).
        depths: Blocks per stage.
        num_heads: Heads per stage.
        window_size: (Wd, Wh, Ww) before shrinking.
        mlp_ratio: MLP hidden ratio.
        qkv_bias: Bias in qkv.
        drop_rate: Dropout after patch embedding and projections.
        attn_drop_rate: Attention dropout.
        drop_path_rate: Stochastic depth, rising linearly over all blocks.
        num_frames: Months T the model is built for (sets the channel counts
            and the derived ``downsample_steps``).
        downsample_steps: (Dt, Ht, Wt) per merging (len(depths) - 1 entries;
            a trailing extra entry, as in the original configs, is ignored).
            None derives Dt = 2 while the temporal depth is > 1, else 1.
        with_cp: Activation checkpointing of each block.
        rel_pos_index_mode: ``'original'`` (default, reproduces the reference
            implementation) or ``'exact'`` relative-position indices for
            shrunken windows.
        init_cfg: E.g. ``dict(type='AgriFM', patch_kernel_policy='reinit',
            checkpoint='checkpoints/AgriFM.pth')`` (runs after the default
            initialisation).
    """

    def __init__(self,
                 in_channels: int = 10,
                 embed_dims: int = 128,
                 patch_size: Sequence[int] = (2, 4, 4),
                 depths: Sequence[int] = (2, 2, 18, 2),
                 num_heads: Sequence[int] = (4, 8, 16, 32),
                 window_size: Sequence[int] = (8, 7, 7),
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.2,
                 num_frames: int = 6,
                 downsample_steps: Optional[Sequence[Sequence[int]]] = None,
                 with_cp: bool = False,
                 rel_pos_index_mode: str = 'original',
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(depths) != len(num_heads):
            raise ValueError(f'depths {tuple(depths)} and num_heads '
                             f'{tuple(num_heads)} differ in length')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.patch_size = _triple(patch_size, 'patch_size')
        self.window_size = _triple(window_size, 'window_size')
        self.depths = tuple(depths)
        self.num_frames = num_frames
        num_merges = len(depths) - 1
        if downsample_steps is None:
            steps = derive_downsample_steps(num_frames, self.patch_size[0],
                                            num_merges)
        else:
            if len(downsample_steps) < num_merges:
                raise ValueError(
                    f'downsample_steps needs {num_merges} (Dt, Ht, Wt) '
                    f'entries, got {downsample_steps}')
            steps = tuple(
                _triple(s, 'downsample_steps entry')
                for s in downsample_steps[:num_merges])
        self.downsample_steps: Tuple[Triple, ...] = steps
        self.patch_emd = PatchEmbed3D(in_channels, embed_dims,
                                      self.patch_size)
        self.backbone = SwinBackbone3D(
            embed_dims, depths, num_heads, self.window_size, steps,
            drop_rate=drop_rate, drop_path_rate=drop_path_rate,
            with_cp=with_cp, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
            attn_drop=attn_drop_rate, rel_pos_index_mode=rel_pos_index_mode)

    # ------------------------------------------------------------ channels
    def temporal_depths(self, num_frames: Optional[int] = None
                        ) -> Tuple[int, ...]:
        """Temporal length D of features_list[0..3] and encoder_features."""
        t = self.num_frames if num_frames is None else num_frames
        depth = math.ceil(t / self.patch_size[0])
        out = [depth]
        for dt, _, _ in self.downsample_steps:
            depth = math.ceil(depth / dt) if dt >= 2 else depth
            out.append(depth)
        return tuple(out)

    @property
    def feature_channels(self) -> Tuple[int, ...]:
        """Channels C_i * D_i of each ``features_list`` entry."""
        return tuple(self.embed_dims * 2**i * d
                     for i, d in enumerate(self.temporal_depths()))

    @property
    def encoder_channels(self) -> int:
        """Channels of ``encoder_features``."""
        return self.feature_channels[-1]

    # ---------------------------------------------------------------- init
    def _default_init(self) -> None:
        """trunc_normal(0.02) Linear weights / bias tables, LayerNorm 1/0."""
        init_transformer_weights(self)
        for m in self.modules():
            if isinstance(m, WindowAttention3D):
                trunc_normal_(m.relative_position_bias_table, std=.02)

    def init_weights(self) -> None:
        """Default init, then the ``init_cfg`` initializers (e.g. AgriFM).

        The pretrained load runs after the default init so that it is never
        overwritten (mmengine runs a custom init_cfg before children init).
        """
        if getattr(self, '_is_init', False):
            return
        self._default_init()
        cfgs = self.init_cfg or []
        if isinstance(cfgs, dict):
            cfgs = [cfgs]
        for cfg in cfgs:
            initializer = WEIGHT_INITIALIZERS.build(dict(cfg))
            initializer(self)
        self._is_init = True

    # ------------------------------------------------------------- forward
    @staticmethod
    def _flatten_time(x: torch.Tensor) -> torch.Tensor:
        """(B, C, D, H, W) -> (B, C*D, H, W), channel index c*D + d."""
        return rearrange(x, 'b c d h w -> b (c d) h w')

    def forward(self, x: torch.Tensor) -> Dict[str, object]:
        """Encode a monthly series.

        Args:
            x: (B, T, C, H, W) float.

        Returns:
            dict(features_list=[(B, C_i*D_i, H_i, W_i) for i in 0..3] with
            H_0 = H/4 ... H_3 = H/32, encoder_features=(B, C*D, H/32, W/32)).
        """
        if x.dim() != 5 or x.shape[2] != self.in_channels:
            raise ValueError(
                f'S2TemporalSwin expects (B, T, {self.in_channels}, H, W), '
                f'got {tuple(x.shape)}')
        x = rearrange(x, 'b t c h w -> b c t h w')
        x = self.patch_emd(x)  # (B, C, D, H/4, W/4)
        features = [self._flatten_time(x)]
        x = self.backbone.pos_drop(x)
        x = rearrange(x, 'b c d h w -> b d h w c')
        num_layers = len(self.backbone.layers)
        for i, layer in enumerate(self.backbone.layers):
            x = layer(x)  # (B, D', H', W', C')
            if i < num_layers - 1:
                features.append(self._flatten_time(
                    rearrange(x, 'b d h w c -> b c d h w')))
        x = self.backbone.norm(x)
        encoder = self._flatten_time(rearrange(x, 'b d h w c -> b c d h w'))
        return dict(features_list=features, encoder_features=encoder)
