"""A hook for DDP tests: each rank saves the buffers it validates with."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from h2crop.registry import HOOKS


@HOOKS.register_module(force=True)
class BufferProbeHook(Hook):
    """Write ``val_buffers_rank<r>.pt``: this rank's buffers at validation.

    Priority LOWEST, so it sees what validation will use after every other
    hook's ``before_val_epoch``.
    """

    priority = 'LOWEST'

    def before_val_epoch(self, runner) -> None:
        model = runner.model
        module = model.module if is_model_wrapper(model) else model
        buffers = {name: buf.detach().clone()
                   for name, buf in module.named_buffers()}
        torch.save(buffers, osp.join(runner.work_dir,
                                     f'val_buffers_rank{get_rank()}.pt'))
