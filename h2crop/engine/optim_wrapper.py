"""Mixed precision where mmengine's AmpOptimWrapper cannot go (CPU)."""
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper

from h2crop.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """OptimWrapper that runs forward passes under bfloat16 autocast.

    mmengine's ``AmpOptimWrapper`` requires a GPU. bfloat16 has float32's
    exponent range, so no loss scaling is needed and this wrapper works on
    any device autocast supports (CPU included).

    Args:
        dtype: Autocast dtype; only ``'bfloat16'`` is accepted.
        **kwargs: Passed to :class:`mmengine.optim.OptimWrapper`.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype != 'bfloat16':
            raise ValueError('AutocastOptimWrapper supports bfloat16 only; '
                             'use AmpOptimWrapper (CUDA) for float16 with '
                             'dynamic loss scaling')
        super().__init__(**kwargs)
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: nn.Module):
        """Autocast on the device of the model's parameters."""
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(
                device_type=device, dtype=self.cast_dtype):
            yield
