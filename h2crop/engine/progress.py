"""A terminal progress bar for training epochs (used by the demo)."""
import sys
import time
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from h2crop.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Draw ``epoch e/E [#####.....] i/N  loss x  eta`` on one terminal line.

    Args:
        width: Bar width in characters.
        stream: Where to draw; default ``sys.stdout``.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, width: int = 30, stream=None) -> None:
        self.width = width
        self.stream = stream
        self._start = 0.0

    def before_train_epoch(self, runner) -> None:
        self._start = time.time()

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not is_main_process():
            return
        stream = self.stream or sys.stdout
        total = len(runner.train_dataloader)
        done = batch_idx + 1
        filled = int(self.width * done / max(total, 1))
        elapsed = time.time() - self._start
        eta = elapsed / done * (total - done)
        loss = float(outputs['loss']) if outputs and 'loss' in outputs \
            else float('nan')
        stream.write(f'\repoch {runner.epoch + 1}/{runner.max_epochs} '
                     f'[{"#" * filled}{"." * (self.width - filled)}] '
                     f'{done}/{total}  loss {loss:.3f}  '
                     f'{elapsed:.0f}s elapsed, eta {eta:.0f}s ')
        if done == total:
            stream.write('\n')
        stream.flush()
