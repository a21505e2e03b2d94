"""A per-pixel MLP: the classical crop-mapping baseline.

Each pixel is classified on its own from its feature vector (its S2 bands
of every month, optionally the EnMAP spectrum of its 30 m cell and the
one-hot prior), without any spatial context. One shared trunk feeds one
linear head per level.
"""
from typing import List, Sequence

import torch
from torch import Tensor, nn

from h2crop.registry import MODELS


@MODELS.register_module()
class PixelMLP(nn.Module):
    """MLP over per-pixel features with one classifier per level.

    Args:
        in_channels: Length F of a pixel's feature vector.
        num_classes: Classes per level, background included.
        hidden_dims: Widths of the hidden layers.
        dropout: Dropout after every hidden layer.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: Sequence[int],
                 hidden_dims: Sequence[int] = (256, 256),
                 dropout: float = 0.1) -> None:
        super().__init__()
        if in_channels < 1 or not num_classes:
            raise ValueError(
                f'PixelMLP: in_channels={in_channels} and num_classes='
                f'{tuple(num_classes)}: expected >= 1 and a non-empty list')
        layers: List[nn.Module] = []
        width = in_channels
        for dim in hidden_dims:
            layers += [nn.Linear(width, dim), nn.LayerNorm(dim), nn.GELU(),
                       nn.Dropout(dropout)]
            width = dim
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(
            nn.Linear(width, int(n)) for n in num_classes)

    def forward(self, x: Tensor) -> List[Tensor]:
        """Logits per level.

        Args:
            x: Pixel features, shape (N, F).

        Returns:
            One tensor (N, C_k) per level.
        """
        feat = self.trunk(x)  # (N, hidden)
        return [head(feat) for head in self.heads]

    @torch.no_grad()
    def predict(self, x: Tensor, chunk: int = 65536) -> Tensor:
        """Predicted ids per level, shape (L, N), int64."""
        outs = [torch.stack([lg.argmax(1) for lg in self(x[i:i + chunk])])
                for i in range(0, x.shape[0], chunk)]  # each (L, n)
        return torch.cat(outs, dim=1)
