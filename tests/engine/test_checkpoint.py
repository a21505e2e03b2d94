"""Atomic checkpoints, the trusted loader and exact resume (toy problem)."""
import os
import os.path as osp
import pickle

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer

import h2crop.engine  # noqa: F401  (registers the runner and hook)
from h2crop.engine import (
    H2CropRunner,
    as_trusted,
    atomic_write_bytes,
    load_trusted_checkpoint,
)
from h2crop.registry import RUNNERS

from .toy import toy_cfg


def build(cfg: dict) -> H2CropRunner:
    return RUNNERS.build(Config(cfg))


def final_weights(runner) -> dict:
    return {k: v.detach().clone()
            for k, v in runner.model.state_dict().items()}


def resume_to_the_same_weights(cfg: dict, straight, expected: dict) -> None:
    """Resume ``cfg`` to its end; compare with the uninterrupted run."""
    resumed = build(cfg)
    resumed.train()
    assert resumed.iter == straight.iter == 12
    got = final_weights(resumed)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=1e-6)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / 'f.bin'
    atomic_write_bytes(str(path), b'old')

    with pytest.raises(TypeError):
        atomic_write_bytes(str(path), object())  # write fails midway
    assert path.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['f.bin']


def test_trusted_loader_reads_mmengine_objects(tmp_path):
    path = tmp_path / 'ck.pth'
    torch.save({'message_hub': {'buf': HistoryBuffer([1.0, 2.0], [1, 1])},
                'state_dict': {'w': torch.ones(2)}}, path)
    # torch >= 2.6 default (weights_only) refuses it
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    ckpt = load_trusted_checkpoint(as_trusted(str(path)))
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    (tmp_path / 'bad.pth').write_bytes(b'PK\x03\x04 truncated')
    with pytest.raises(RuntimeError, match='bad.pth'):
        load_trusted_checkpoint(str(tmp_path / 'bad.pth'))
    with pytest.raises(FileNotFoundError):
        load_trusted_checkpoint(str(tmp_path / 'missing.pth'))


def test_kill_during_save_keeps_last_checkpoint_readable(tmp_path,
                                                         monkeypatch):
    work = str(tmp_path / 'work')
    runner = build(toy_cfg(work, max_epochs=3))

    def dying_save(self, out_dir, filename, *args, **kwargs):
        # The epoch-3 checkpoint "gets killed" half-way through its write.
        if filename == 'epoch_3.pth':
            with open(osp.join(out_dir, f'.{filename}.tmp'), 'wb') as f:
                f.write(b'PK\x03\x04 half a zip')
            raise KeyboardInterrupt('killed while writing')
        return H2CropRunner.save_checkpoint(self, out_dir, filename, *args,
                                            **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', dying_save.__get__(runner))
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    last = (tmp_path / 'work' / 'last_checkpoint').read_text().strip()
    assert last.endswith('epoch_2.pth')
    ckpt = load_trusted_checkpoint(last)  # complete and readable
    assert ckpt['meta']['epoch'] == 2
    # mmengine would have deleted epoch_2 before writing epoch_3
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))
    assert not osp.exists(osp.join(work, 'epoch_1.pth'))  # pruned after save
    assert not osp.exists(osp.join(work, 'epoch_3.pth'))


class Killed(Exception):
    pass


def test_resume_reaches_the_same_weights(tmp_path):
    straight = build(toy_cfg(str(tmp_path / 'a'), max_epochs=3))
    straight.train()
    expected = final_weights(straight)

    # Same run, killed in the middle of epoch 3 (after its 2nd iteration).
    first = build(toy_cfg(str(tmp_path / 'b'), max_epochs=3))
    real_step = first.model.train_step

    def train_step(data, optim_wrapper):
        if first.epoch == 2 and first.train_loop._iter == 9:
            raise Killed()
        return real_step(data, optim_wrapper)

    first.model.train_step = train_step
    with pytest.raises(Killed):
        first.train()
    cfg = toy_cfg(str(tmp_path / 'b'), max_epochs=3)
    cfg.update(resume=True)
    resume_to_the_same_weights(cfg, straight, expected)


def test_load_checkpoint_is_strict(tmp_path):
    runner = build(toy_cfg(str(tmp_path / 'w'), max_epochs=1))
    runner.train()
    ckpt = osp.join(str(tmp_path / 'w'), 'epoch_1.pth')
    data = load_trusted_checkpoint(ckpt)
    data['state_dict'].pop('fc2.bias')
    torch.save(data, str(tmp_path / 'partial.pth'))
    with pytest.raises(RuntimeError, match='fc2.bias'):
        runner.load_checkpoint(str(tmp_path / 'partial.pth'))


def test_a_failing_validation_keeps_the_epoch_exactly(tmp_path,
                                                      monkeypatch):
    """Epoch 1 is not due for a checkpoint (interval 2); its validation
    fails: the emergency checkpoint holds epoch 1 and the training RNG
    streams, so resuming from it reaches the uninterrupted weights."""
    straight = build(toy_cfg(str(tmp_path / 'a'), max_epochs=3, interval=2))
    straight.train()
    expected = final_weights(straight)

    from .toy import ToyMetric
    real = ToyMetric.compute_metrics

    def failing(self, results):
        raise ValueError('metric failed')

    work = str(tmp_path / 'b')
    monkeypatch.setattr(ToyMetric, 'compute_metrics', failing)
    first = build(toy_cfg(work, max_epochs=3, interval=2))
    with pytest.raises(ValueError, match='metric failed') as err:
        first.train()
    path = osp.join(work, 'emergency_epoch_1.pth')
    assert any(path in note for note in err.value.__notes__)
    saved = load_trusted_checkpoint(path)
    assert (saved['meta']['epoch'], saved['meta']['iter']) == (1, 4)
    for key, value in final_weights(first).items():
        assert torch.equal(saved['state_dict'][key], value)
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip() == path

    monkeypatch.setattr(ToyMetric, 'compute_metrics', real)
    cfg = toy_cfg(work, max_epochs=3, interval=2)
    cfg.update(resume=True, load_from=path)
    resume_to_the_same_weights(cfg, straight, expected)


def test_no_emergency_checkpoint_when_the_epoch_was_saved(tmp_path,
                                                          monkeypatch):
    from .toy import ToyMetric

    def failing(self, results):
        raise ValueError('metric failed')

    monkeypatch.setattr(ToyMetric, 'compute_metrics', failing)
    work = str(tmp_path / 'w')
    runner = build(toy_cfg(work, max_epochs=2))  # saves every epoch
    with pytest.raises(ValueError, match='metric failed'):
        runner.train()
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert not [n for n in os.listdir(work) if n.startswith('emergency')]
