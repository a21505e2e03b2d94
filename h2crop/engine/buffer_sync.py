"""Validate, under data parallelism, the model that is saved.

Each DDP process updates its own BatchNorm running statistics from its own
batches (the wrapper does not broadcast buffers: ``broadcast_buffers=False``),
while checkpoints are written by rank 0. Without care every rank validates
with different statistics and the reported score belongs to no saved model.
:class:`BroadcastBuffersHook` copies rank 0's buffers to every rank before
each validation, so validation (and the best checkpoint chosen by it) uses
exactly the weights in the checkpoint. On CUDA the paper configs also
convert BatchNorm to SyncBatchNorm (``sync_bn = 'torch'``), whose running
statistics agree across ranks anyway.
"""
import torch
from mmengine.dist import broadcast, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from h2crop.registry import HOOKS


def broadcast_buffers(model: torch.nn.Module, src: int = 0) -> int:
    """Overwrite every rank's buffers with those of rank ``src``.

    Args:
        model: The (possibly wrapped) model.
        src: Rank whose buffers win.

    Returns:
        Number of buffers broadcast (0 outside data parallelism).
    """
    if get_world_size() < 2:
        return 0
    module = model.module if is_model_wrapper(model) else model
    count = 0
    for buf in module.buffers():
        broadcast(buf, src)
        count += 1
    return count


@HOOKS.register_module()
class BroadcastBuffersHook(Hook):
    """Broadcast rank 0's buffers before validation (see module docs).

    :class:`~h2crop.engine.H2CropRunner` registers it itself; it costs one
    broadcast per buffer and validation round and does nothing in a single
    process.
    """

    priority = 'VERY_HIGH'

    def before_val_epoch(self, runner) -> None:
        """Make every rank validate rank 0's (the saved) buffers."""
        broadcast_buffers(runner.model)
