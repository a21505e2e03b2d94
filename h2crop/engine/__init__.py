"""Training engine: runner, hooks, checkpoints, distributed set-up."""
from .buffer_sync import BroadcastBuffersHook, broadcast_buffers
from .checkpoint import (
                         TRUSTED_SCHEME,
                         as_trusted,
                         atomic_write_bytes,
                         atomic_write_text,
                         load_trusted_checkpoint,
)
from .dist import default_backend, init_distributed, shutdown_distributed
from .hooks import H2CropCheckpointHook
from .optim_wrapper import AutocastOptimWrapper
from .prediction_writer import PredictionWriterHook
from .progress import ProgressBarHook
from .rng import get_rng_state, set_rng_state
from .runner import H2CropRunner

__all__ = [
    'BroadcastBuffersHook', 'broadcast_buffers',
    'TRUSTED_SCHEME', 'as_trusted', 'atomic_write_bytes', 'atomic_write_text',
    'load_trusted_checkpoint', 'default_backend', 'init_distributed',
    'shutdown_distributed',
    'H2CropCheckpointHook', 'PredictionWriterHook', 'ProgressBarHook',
    'AutocastOptimWrapper', 'get_rng_state', 'set_rng_state', 'H2CropRunner'
]
