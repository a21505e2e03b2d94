"""Work-dir rules of training.

Nothing is overwritten, nothing is resumed from nowhere.

* Training into a work dir that already holds checkpoints (of an earlier
  run) is refused unless the run resumes (``--resume``) or is told to replace
  them (``--overwrite``, which removes the old checkpoints first).
* ``--resume`` without a checkpoint to resume from is an error, not a fresh
  start.
* A resumed run does not load pretrained weights (the resumed ones replace
  them), so it does not need ``checkpoints/AgriFM.pth``.
"""
import glob
import os
import os.path as osp
from typing import Any, List, Optional

from mmengine.config import ConfigDict
from mmengine.dist import is_main_process

#: File in which mmengine records the newest checkpoint of a work dir.
LAST_CHECKPOINT = 'last_checkpoint'
CHECKPOINT_SUFFIX = '.pth'
#: ``init_cfg`` types that load pretrained weights from a file.
PRETRAINED_INIT_TYPES = ('AgriFM', 'Pretrained')


class WorkDirError(RuntimeError):
    """A run would overwrite or resume what it should not."""


class RunFinishedError(WorkDirError):
    """``--resume`` names a run that already reached ``max_epochs``.

    Nothing failed: a job requeued after its last checkpoint was written
    (preemption, a node lost while the process was exiting) finds its
    training done. ``tools/train.py`` reports it and exits with status 0.
    """


def checkpoints_in(work_dir: str) -> List[str]:
    """Checkpoint files and the ``last_checkpoint`` record of a work dir."""
    if not osp.isdir(work_dir):
        return []
    files = sorted(glob.glob(osp.join(work_dir, '*' + CHECKPOINT_SUFFIX)))
    last = osp.join(work_dir, LAST_CHECKPOINT)
    return files + ([last] if osp.isfile(last) else [])


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``last_checkpoint`` names, if it exists."""
    last = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(last):
        return None
    with open(last, encoding='utf-8') as f:
        path = f.read().strip()
    return path if path and osp.isfile(path) else None


def check_work_dir(work_dir: str, resume: Optional[str],
                   overwrite: bool) -> Optional[str]:
    """Apply the work-dir rules before a training run is built.

    Args:
        work_dir: The run's work dir.
        resume: None (fresh run), ``'auto'`` (newest checkpoint of the work
            dir) or a checkpoint path.
        overwrite: Replace the checkpoints of an earlier run.

    Returns:
        The checkpoint to resume from (None for a fresh run).

    Raises:
        WorkDirError: Naming the files and the option to use.
    """
    if resume is not None and overwrite:
        raise WorkDirError('--resume and --overwrite exclude each other: '
                           'resume continues the run in the work dir, '
                           '--overwrite replaces it')
    if resume == 'auto':
        ckpt = latest_checkpoint(work_dir)
        if ckpt is None:
            raise WorkDirError(
                f'--resume: nothing to resume from in {work_dir} (no '
                f'{LAST_CHECKPOINT} naming an existing checkpoint); give a '
                'checkpoint (--resume CKPT) or start a fresh run without '
                '--resume')
        return ckpt
    if resume is not None:
        if not osp.isfile(resume):
            raise WorkDirError(f'--resume {resume}: no such checkpoint file')
        return resume
    existing = checkpoints_in(work_dir)
    if existing and not overwrite:
        shown = ', '.join(osp.basename(p) for p in existing[:4])
        more = f' and {len(existing) - 4} more' if len(existing) > 4 else ''
        raise WorkDirError(
            f'{work_dir} already holds checkpoints of another run ({shown}'
            f'{more}); continue it with --resume, replace it with '
            '--overwrite, or choose another --work-dir')
    return None


def check_epochs_left(ckpt: str, max_epochs: Optional[int],
                      config: str = 'CONFIG') -> None:
    """Refuse to resume a run that has nothing left to train.

    Args:
        ckpt: The checkpoint ``--resume`` continues from.
        max_epochs: Epochs of the resumed run (None: not epoch-based).
        config: The config file, for the advice.

    Raises:
        RunFinishedError: When the checkpoint's epoch reached
            ``max_epochs`` (the message says how to train longer).
        WorkDirError: When the file is no readable checkpoint.
    """
    from h2crop.models.weights.io import read_checkpoint_meta
    try:
        done = read_checkpoint_meta(ckpt).get('epoch')
    except (OSError, RuntimeError) as err:  # CheckpointReadError
        raise WorkDirError(f'--resume {ckpt}: {err}') from err
    if max_epochs is None or not isinstance(done, int) or done < max_epochs:
        return
    raise RunFinishedError(
        f'--resume {ckpt}: that run ended at epoch {done} and max_epochs is '
        f'{max_epochs}: nothing is left to train. To train longer, start a '
        'new run from its weights with a longer schedule: python '
        f'tools/train.py {config} --work-dir NEW_DIR --cfg-options '
        f'load_from={ckpt} max_epochs=N (resuming with a larger max_epochs '
        'would run the finished learning-rate schedule past its end)')


def check_output_dir(folder: Optional[str], flag: str,
                     overwrite: bool) -> None:
    """Refuse an output folder that holds files, unless ``overwrite``.

    Args:
        folder: The folder (None: not asked for).
        flag: The option that names it, for the message (``'--out'``).
        overwrite: Files of the same names may be replaced.

    Raises:
        WorkDirError: Naming the folder, a file in it and the option.
    """
    if not folder or not osp.isdir(folder):
        return
    files = sorted(os.listdir(folder))
    if files and not overwrite:
        raise WorkDirError(
            f'{flag} {folder} already holds {len(files)} file(s) (e.g. '
            f'{files[0]}); pass --overwrite to replace them, or choose '
            'another folder')


def clear_checkpoints(work_dir: str) -> List[str]:
    """Remove an earlier run's checkpoints (``--overwrite``; rank 0 only).

    Returns:
        The files removed.
    """
    if not is_main_process():  # called once distribution is set up
        return []
    removed = checkpoints_in(work_dir)
    for path in removed:
        os.remove(path)
    return removed


def drop_pretrained_init(node: Any) -> int:
    """Remove ``init_cfg`` entries that load pretrained files, in place.

    Returns:
        How many were removed.
    """
    removed = 0
    if isinstance(node, (dict, ConfigDict)):
        init = node.get('init_cfg')
        inits = init if isinstance(init, list) else [init]
        kept = [i for i in inits if not (isinstance(i, (dict, ConfigDict))
                                         and i.get('type') in
                                         PRETRAINED_INIT_TYPES)]
        if 'init_cfg' in node and len(kept) != len(inits):
            removed += len(inits) - len(kept)
            node['init_cfg'] = (kept if isinstance(init, list) else
                                (kept[0] if kept else None))
        for value in node.values():
            removed += drop_pretrained_init(value)
    elif isinstance(node, list):
        for value in node:
            removed += drop_pretrained_init(value)
    return removed
