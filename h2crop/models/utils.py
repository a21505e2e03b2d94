"""Small helpers shared by several model files."""
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_


def init_transformer_weights(module: nn.Module) -> None:
    """ViT / Swin default init of every submodule of ``module``.

    Linear weights trunc_normal(std 0.02) with zero biases; LayerNorm weight
    1, bias 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
