"""The progress hook: a bar on a terminal, plain lines in a log file."""
import io
from types import SimpleNamespace

import pytest

from h2crop.engine.progress import ProgressBarHook


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _epoch(hook, total=25, loss=0.5):
    runner = SimpleNamespace(train_dataloader=[None] * total, epoch=0,
                             max_epochs=3)
    hook.before_train_epoch(runner)
    for i in range(total):
        hook.after_train_iter(runner, i, outputs=dict(loss=loss))


def test_redirected_output_gets_one_line_per_interval():
    log = io.StringIO()
    _epoch(ProgressBarHook(stream=log, interval=10))
    lines = log.getvalue().splitlines()
    assert '\r' not in log.getvalue()
    assert [ln.split()[2] for ln in lines] == ['10/25', '20/25', '25/25']
    assert lines[0].startswith('epoch 1/3 10/25  loss 0.500')
    default = io.StringIO()
    _epoch(ProgressBarHook(stream=default), total=100)
    assert len(default.getvalue().splitlines()) == 10


def test_terminal_gets_the_bar_redrawn_in_place():
    tty = _Terminal()
    _epoch(ProgressBarHook(stream=tty, width=10))
    text = tty.getvalue()
    assert text.count('\r') == 25 and text.count('\n') == 1
    assert '[##########] 25/25' in text


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match='interval 0'):
        ProgressBarHook(interval=0)


def test_a_loss_attached_to_the_graph_gives_no_warning():
    import warnings

    import torch
    loss = torch.tensor(0.25, requires_grad=True) * 2
    log = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _epoch(ProgressBarHook(stream=log, interval=5), total=5, loss=loss)
    assert 'loss 0.500' in log.getvalue()
