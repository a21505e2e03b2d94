"""Hooks of h2crop's training loop."""
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import all_gather_object, get_rank, is_main_process
from mmengine.hooks import CheckpointHook

from h2crop.registry import HOOKS

from .checkpoint import atomic_write_text
from .rng import get_rng_state, set_rng_state

#: Key of the per-rank RNG states in a checkpoint's ``meta``.
RNG_META_KEY = 'rng_states'


@HOOKS.register_module()
class H2CropCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook made safe to kill and exact to resume.

    Differences from :class:`mmengine.hooks.CheckpointHook`:

    * A new checkpoint is written completely (atomically, see
      :meth:`h2crop.engine.H2CropRunner.save_checkpoint`) and
      ``last_checkpoint`` is atomically pointed at it *before* outdated
      checkpoints are removed.
      mmengine removes the oldest checkpoint first, so a kill during the next
      write left ``last_checkpoint`` naming a deleted file.
    * The RNG states of every rank (Python, numpy, torch) are stored in the
      checkpoint meta, and :class:`H2CropRunner` restores them on resume, so a
      resumed run draws the same augmentations, CutMix boxes and drop-path
      masks as an uninterrupted one.
    * Validation runs RNG-neutral: the training RNG states are saved before
      validation and restored after it, so evaluating (which creates data
      loader iterators that draw seeds) does not shift the training stream
      and a run resumed from a checkpoint saved before validation continues
      exactly.

    The best checkpoint is likewise written before the previous best is
    removed.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._rng_before_val: Optional[Dict] = None

    # ----------------------------------------------------------- RNG
    def training_rng_state(self) -> Dict:
        """The RNG states of the training streams, now.

        During validation these are the states saved before it, since
        validation draws from the generators too.
        """
        if self._rng_before_val is not None:
            return self._rng_before_val
        return get_rng_state()

    def before_val_epoch(self, runner) -> None:
        """Remember the training RNG states."""
        self._rng_before_val = get_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        """Restore the training RNG states, then save the best checkpoint.

        The restore comes first because mmengine re-saves the latest
        checkpoint here when the best score improves; that copy must hold
        the training RNG states, not those left behind by validation.
        """
        if self._rng_before_val is not None:
            set_rng_state(self._rng_before_val)
            self._rng_before_val = None
        super().after_val_epoch(runner, metrics)

    # ----------------------------------------------------------- saving
    def _save_checkpoint_with_step(self, runner, step, meta):
        """Save, point ``last_checkpoint`` at it, then prune old ones."""
        meta = dict(meta or {})
        meta[RNG_META_KEY] = all_gather_object(get_rng_state())
        to_remove = None
        if self.max_keep_ckpts > 0 and not (len(self.keep_ckpt_ids) > 0 and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                to_remove = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                          self.last_ckpt)
        if to_remove is not None and to_remove != step:
            old = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(to_remove))
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """Write the new best checkpoint before removing the previous one."""
        if not self.save_best:
            return
        single = len(self.key_indicators) == 1
        old = ({None: getattr(self, 'best_ckpt_path', None)} if single else
               dict(self.best_ckpt_path_dict))
        # Hide the previous best paths so the parent does not delete them
        # before the new checkpoint exists.
        if single:
            self.best_ckpt_path = None
        else:
            self.best_ckpt_path_dict = {k: None for k in old}
        super()._save_best_checkpoint(runner, metrics)
        for key, old_path in old.items():
            new_path = (self.best_ckpt_path if single else
                        self.best_ckpt_path_dict[key])
            if new_path is None:  # no improvement: keep the previous best
                if single:
                    self.best_ckpt_path = old_path
                else:
                    self.best_ckpt_path_dict[key] = old_path
            elif (old_path and old_path != new_path and is_main_process()
                  and self.file_backend.isfile(old_path)):
                self.file_backend.remove(old_path)
                runner.logger.info(
                    f'The previous best checkpoint {old_path} is removed')


def restore_rng_from_meta(meta: dict) -> bool:
    """Restore this rank's RNG states from a checkpoint meta, if present.

    Returns:
        Whether states were found and restored.
    """
    states = meta.get(RNG_META_KEY)
    if not states:
        return False
    rank = get_rank()
    set_rng_state(states[rank if rank < len(states) else 0])
    return True
