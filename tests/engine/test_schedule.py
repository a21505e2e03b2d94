"""What mmengine does with a cosine schedule whose `end` is left open.

The original implementation's cosine has no `end`; mmengine fills it with
the run's length when the train loop is built, so the learning rate decays
to `eta_min` at the last iteration (it does not stay flat).
"""
import math

from mmengine.hooks import Hook

from h2crop.registry import RUNNERS
from h2crop.utils import register_all_modules

from .toy import toy_cfg

register_all_modules(init_default_scope=False)


class _LrRecorder(Hook):

    def __init__(self):
        self.lrs = []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])


def _run(tmp_path, schedulers, max_epochs=3):
    cfg = toy_cfg(str(tmp_path), max_epochs=max_epochs)
    cfg['optim_wrapper'] = dict(optimizer=dict(type='AdamW', lr=6e-5))
    cfg['param_scheduler'] = schedulers
    cfg['val_dataloader'] = cfg['val_evaluator'] = cfg['val_cfg'] = None
    cfg['train_cfg'] = dict(type='EpochBasedTrainLoop',
                            max_epochs=max_epochs)
    cfg['default_hooks']['checkpoint'] = None
    runner = RUNNERS.build(cfg)
    recorder = _LrRecorder()
    runner.register_hook(recorder)
    runner.train()
    return recorder.lrs


def test_open_ended_cosine_decays_to_eta_min(tmp_path):
    warmup = 4
    lrs = _run(tmp_path, [
        dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
             end=warmup),
        # as the original: no `end`
        dict(type='CosineAnnealingLR', eta_min=6e-6, by_epoch=False,
             begin=warmup),
    ])
    total = len(lrs)
    assert total == 12  # 16 toy samples, batch 4, 3 epochs
    assert math.isclose(lrs[0], 6e-7, rel_tol=1e-6)  # 0.01 x lr
    after = lrs[warmup:]
    # strictly decaying after warm-up: not flat
    assert all(b < a for a, b in zip(after, after[1:]))
    # cosine from 6e-5 to 6e-6 over the remaining `total - warmup` steps
    for step, lr in enumerate(after):
        expected = 6e-6 + 0.5 * (6e-5 - 6e-6) * (
            1 + math.cos(math.pi * step / (total - warmup)))
        assert math.isclose(lr, expected, rel_tol=1e-6), (step, lr)
