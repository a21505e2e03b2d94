"""Process-group set-up helpers (no process group is started here)."""
import os

import pytest

from h2crop.engine import dist as h2dist


def test_slurm_variables_become_env_vars(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv('SLURM_PROCID', '5')
    monkeypatch.setenv('SLURM_NTASKS', '8')
    monkeypatch.setenv('SLURM_LOCALID', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node[01-02]')
    monkeypatch.setenv('MASTER_ADDR', 'node01')
    h2dist._slurm_env(port=29999)
    assert (os.environ['RANK'], os.environ['WORLD_SIZE'],
            os.environ['LOCAL_RANK'], os.environ['MASTER_PORT']) == (
                '5', '8', '1', '29999')


def test_slurm_without_scontrol_asks_for_master_addr(monkeypatch):
    monkeypatch.delenv('MASTER_ADDR', raising=False)
    monkeypatch.setenv('SLURM_PROCID', '0')
    monkeypatch.setenv('SLURM_NTASKS', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node01')
    monkeypatch.setenv('PATH', '/nonexistent')
    with pytest.raises(RuntimeError, match='MASTER_ADDR'):
        h2dist._slurm_env(port=None)


def test_backend_follows_the_device(monkeypatch):
    monkeypatch.setattr(h2dist.torch.cuda, 'is_available', lambda: False)
    assert h2dist.default_backend() == 'gloo'
    monkeypatch.setattr(h2dist.torch.cuda, 'is_available', lambda: True)
    assert h2dist.default_backend() == 'nccl'


def test_launcher_errors(monkeypatch):
    with pytest.raises(ValueError):
        h2dist.init_distributed('none')
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(KeyError, match='torchrun'):
        h2dist.init_distributed('pytorch')
