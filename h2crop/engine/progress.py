"""Training progress: a bar on a terminal, plain lines in a log file."""
import sys
import time
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from h2crop.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show ``epoch e/E [#####.....] i/N  loss x  eta`` while training.

    On a terminal the bar is redrawn in place on one line. When the stream
    is not a terminal (output redirected to a file, a batch system's log)
    one plain line is written every ``interval`` iterations and at the end
    of each epoch instead of hundreds of carriage returns.

    Args:
        width: Bar width in characters.
        stream: Where to write; default ``sys.stdout``.
        interval: Iterations between lines when ``stream`` is not a
            terminal; None: about ten lines per epoch.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, width: int = 30, stream=None,
                 interval: Optional[int] = None) -> None:
        if interval is not None and interval < 1:
            raise ValueError(f'interval {interval}: expected >= 1 or None')
        self.width = width
        self.stream = stream
        self.interval = interval
        self._start = 0.0

    def before_train_epoch(self, runner) -> None:
        """Start the epoch's clock.

        Args:
            runner: The runner of the training.
        """
        self._start = time.time()

    @staticmethod
    def _is_terminal(stream) -> bool:
        isatty = getattr(stream, 'isatty', None)
        return bool(isatty and isatty())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Redraw the bar (or write a line) after a training iteration.

        Args:
            runner: The runner of the training.
            batch_idx: Index of the iteration within the epoch.
            data_batch: The batch of the iteration (unused).
            outputs: The iteration's outputs; ``loss`` is shown if present.
        """
        if not is_main_process():
            return
        stream = self.stream or sys.stdout
        total = len(runner.train_dataloader)
        done = batch_idx + 1
        terminal = self._is_terminal(stream)
        interval = self.interval or max(1, total // 10)
        if not terminal and done % interval and done != total:
            return
        elapsed = time.time() - self._start
        eta = elapsed / done * (total - done)
        value = outputs.get('loss', float('nan')) if outputs else \
            float('nan')
        # the loss may still be attached to the graph
        loss = float(value.detach() if hasattr(value, 'detach') else value)
        status = (f'{done}/{total}  loss {loss:.3f}  {elapsed:.0f}s '
                  f'elapsed, eta {eta:.0f}s')
        epoch = f'epoch {runner.epoch + 1}/{runner.max_epochs}'
        if terminal:
            filled = int(self.width * done / max(total, 1))
            bar = '#' * filled + '.' * (self.width - filled)
            stream.write(f'\r{epoch} [{bar}] {status} ')
            if done == total:
                stream.write('\n')
        else:
            stream.write(f'{epoch} {status}\n')
        stream.flush()
