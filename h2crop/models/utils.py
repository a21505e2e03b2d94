"""Small helpers shared by several model files."""
import os.path as osp

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


def find_reference_case_dir(reference_dir: str, subdir: str,
                            marker: str) -> str:
    """Return ``reference_dir`` or ``reference_dir/subdir``, whichever holds
    ``marker`` (a case description file).

    Raises:
        FileNotFoundError: When neither does.
    """
    for candidate in (reference_dir, osp.join(reference_dir, subdir)):
        if osp.isfile(osp.join(candidate, marker)):
            return candidate
    raise FileNotFoundError(
        f'{marker} not found in {reference_dir} or its {subdir}/ folder')
