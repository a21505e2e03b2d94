"""Process-group set-up whose backend follows the device (nccl / gloo).

mmengine's ``init_dist`` always calls ``torch.cuda.set_device`` and so cannot
start CPU data parallelism. :func:`init_distributed` initialises the process
group itself before the Runner is built; the Runner then finds it initialised
and skips its own set-up.
"""
import os
import subprocess
from datetime import timedelta
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.logging import print_log

LAUNCHERS = ('none', 'pytorch', 'slurm')


def default_backend() -> str:
    """``nccl`` when CUDA is usable, else ``gloo``."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def _slurm_env(port: Optional[int]) -> None:
    """Translate Slurm's variables into torch.distributed's env:// ones."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    if 'MASTER_ADDR' not in os.environ:
        try:
            hosts = subprocess.run(
                ['scontrol', 'show', 'hostnames', node_list], check=True,
                capture_output=True, text=True).stdout.split()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RuntimeError(
                f'cannot expand SLURM_NODELIST={node_list!r} with scontrol '
                f'({exc}); set MASTER_ADDR to the first node') from exc
        os.environ['MASTER_ADDR'] = hosts[0]
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    local = os.environ.get('SLURM_LOCALID')
    if local is None:
        gpus = max(torch.cuda.device_count(), 1)
        local = str(proc_id % gpus)
    os.environ['LOCAL_RANK'] = local


def init_distributed(launcher: str,
                     backend: Optional[str] = None,
                     port: Optional[int] = None,
                     timeout_s: int = 1800) -> None:
    """Initialise torch.distributed for ``launcher`` unless already done.

    Args:
        launcher: ``'pytorch'`` (torchrun: RANK, WORLD_SIZE, LOCAL_RANK,
            MASTER_ADDR/PORT set) or ``'slurm'`` (srun).
        backend: ``'nccl'`` or ``'gloo'``; default follows the device.
        port: Master port for Slurm (else ``MASTER_PORT`` or 29500).
        timeout_s: Collective timeout.

    Raises:
        ValueError: On an unknown launcher or nccl without CUDA.
        KeyError: When the launcher's environment variables are missing.
    """
    if launcher not in LAUNCHERS or launcher == 'none':
        raise ValueError(f'launcher must be one of {LAUNCHERS[1:]} here, '
                         f'got {launcher!r}')
    if dist.is_available() and dist.is_initialized():
        return
    if launcher == 'slurm':
        _slurm_env(port)
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        if key not in os.environ:
            raise KeyError(f'launcher {launcher!r} needs the environment '
                           f'variable {key}; start with torchrun '
                           '(tools/dist_train.sh) or srun')
    backend = backend or default_backend()
    if backend == 'nccl':
        if not torch.cuda.is_available():
            raise ValueError('backend nccl needs CUDA; use gloo on CPU')
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    dist.init_process_group(backend=backend, init_method='env://',
                            timeout=timedelta(seconds=timeout_s))
    print_log(f'distributed: backend={backend} rank={dist.get_rank()} '
              f'world_size={dist.get_world_size()}', logger='current')


def shutdown_distributed() -> None:
    """Wait for every rank, then tear the process group down.

    Leaving a gloo group to the interpreter's exit can abort a process
    ("terminate called without an active exception") while its peer still
    talks to it; an orderly shutdown avoids that.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
