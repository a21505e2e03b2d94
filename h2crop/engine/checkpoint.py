"""Checkpoint reading and writing that works on current PyTorch.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and refuses
the Python objects mmengine stores in its training checkpoints (message hub
buffers, numpy states, ...). Our own checkpoints are therefore read through a
dedicated loader scheme, :data:`TRUSTED_SCHEME`, that unpickles them fully.
Only files a user points h2crop at for resuming or testing (its own training
output) go through it; third-party weights (AgriFM) are still read with
``weights_only=True`` by their loader.

Writes are atomic: a checkpoint is written to a temporary file in the same
folder, flushed to disk and renamed over the final name, so a kill during the
write never leaves a truncated file under a name anything points to.
"""
import os
import os.path as osp
import tempfile
from typing import Any, Callable, Optional, Union

import torch
from mmengine.runner.checkpoint import CheckpointLoader

from h2crop.models.weights.io import TRUSTED, load_checkpoint_file

#: Prefix that routes a local path through :func:`load_trusted_checkpoint`.
TRUSTED_SCHEME = 'h2crop-trusted://'


def load_trusted_checkpoint(filename: str,
                            map_location: Optional[Union[str, Callable,
                                                         torch.device]] = None
                            ) -> Any:
    """Fully unpickle a local h2crop checkpoint (``weights_only=False``).

    Args:
        filename: ``h2crop-trusted://<path>`` or a plain local path.
        map_location: As for :func:`torch.load`.

    Raises:
        FileNotFoundError: When the file does not exist.
        CheckpointReadError: When the file is not a readable torch
            checkpoint (a ``RuntimeError``).
    """
    path = filename[len(TRUSTED_SCHEME):] if filename.startswith(
        TRUSTED_SCHEME) else filename
    return load_checkpoint_file(path, trust=TRUSTED,
                                map_location=map_location)


CheckpointLoader.register_scheme(prefixes=TRUSTED_SCHEME,
                                 loader=load_trusted_checkpoint, force=True)


def checkpoint_meta(filename: str) -> dict:
    """The ``meta`` of a local h2crop training checkpoint.

    The file is memory-mapped, so its tensors are not read.

    Raises:
        FileNotFoundError / CheckpointReadError: As
            :func:`load_trusted_checkpoint`.
    """
    path = filename[len(TRUSTED_SCHEME):] if filename.startswith(
        TRUSTED_SCHEME) else filename
    data = load_checkpoint_file(path, trust=TRUSTED, map_location='cpu',
                                mmap=True)
    meta = data.get('meta') if isinstance(data, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def as_trusted(filename: str) -> str:
    """Route a local path through the trusted loader; leave URLs alone."""
    if filename.startswith(TRUSTED_SCHEME) or '://' in filename:
        return filename
    return TRUSTED_SCHEME + osp.abspath(osp.expanduser(filename))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename)."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.',
                               suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode('utf-8'))


def _fsync_dir(folder: str) -> None:
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
