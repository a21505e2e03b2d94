"""The Runner of h2crop.

It is mmengine's Runner, fixed for current PyTorch and CPU DDP.
"""
import os
import os.path as osp
from typing import Callable, Dict, Optional, Union

import torch
from mmengine.dist import get_world_size, is_main_process, master_only
from mmengine.runner import Runner

from h2crop.datasets.h5io import H2CropDataError
from h2crop.registry import RUNNERS

from .buffer_sync import BroadcastBuffersHook
from .checkpoint import _fsync_dir, as_trusted, atomic_write_text
from .checkpoint_experiment import EXPERIMENT_META_KEY, experiment_record
from .data_faults import SkippedTilesHook, explain_data_error
from .hooks import (
    RNG_META_KEY,
    H2CropCheckpointHook,
    restore_rng_from_meta,
)
from .work_dir import LAST_CHECKPOINT

#: File name of the checkpoint written when a hook fails after an epoch.
EMERGENCY_TMPL = 'emergency_epoch_{}.pth'


@RUNNERS.register_module()
class H2CropRunner(Runner):
    """mmengine Runner with resumable checkpoints, CPU DDP and strict loading.

    * Local checkpoints (``load_from``, resume) are read through
      :data:`h2crop.engine.checkpoint.TRUSTED_SCHEME`, which works with
      torch >= 2.6 (``weights_only`` default); loading a model's weights for
      testing is strict, so a checkpoint of another architecture fails instead
      of silently leaving layers random.
    * Checkpoints are written atomically (temporary file + rename).
    * On resume the RNG states saved by :class:`H2CropCheckpointHook` are
      restored after everything else, so training continues bit-for-bit.
    * Under CPU data parallelism (gloo) the model wrapper gets
      ``device_ids=None``; CPU modules reject device ids. ``sync_bn`` (the
      paper configs set ``'torch'``) takes effect on CUDA only, since
      SyncBatchNorm has no CPU kernel.
    * Before every validation the buffers of rank 0 (BatchNorm statistics)
      are broadcast to all ranks (:class:`BroadcastBuffersHook`), so the
      validated model is the one rank 0 saves.
    * A tile that cannot be read stops training with its name, where the
      run stopped and the checkpoint to resume from; tiles skipped with the
      dataset option ``skip_bad_tiles`` are counted at the end
      (:class:`SkippedTilesHook`).
    * No epoch is lost to a failing hook: when anything fails between the
      end of an epoch's iterations and the start of the next epoch (saving
      a checkpoint, any hook, validation) before that epoch's weights were
      saved, they are written to ``emergency_epoch_<N>.pth`` beside the
      other checkpoints (full training state, ``last_checkpoint`` points at
      it) and the error says how to resume from it.
    """

    def __init__(self, *args, load_strict: bool = True, **kwargs) -> None:
        self._load_strict = load_strict
        self._resumed_meta: Optional[Dict] = None
        self._experiment: Optional[Dict] = None
        #: Epoch whose iterations are done but whose weights are not saved.
        self._unsaved_epoch: Optional[int] = None
        super().__init__(*args, **kwargs)

    @classmethod
    def from_cfg(cls, cfg) -> 'H2CropRunner':
        """Build from a config, adding ``load_strict`` to mmengine's keys."""
        cfg = cfg.copy()
        strict = cfg.pop('load_strict', True)
        runner = super().from_cfg(cfg)
        runner._load_strict = strict
        return runner

    # ----------------------------------------------------------- loading
    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: Optional[bool] = None,
                        revise_keys: Optional[list] = None):
        """Load a checkpoint (trusted local scheme, strict by default)."""
        if revise_keys is None:
            revise_keys = [(r'^module.', '')]
        strict = self._load_strict if strict is None else strict
        checkpoint = super().load_checkpoint(
            as_trusted(filename), map_location=map_location, strict=strict,
            revise_keys=revise_keys)
        self._resumed_meta = checkpoint.get('meta', {})
        return checkpoint

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        """Resume training state, then restore the saved RNG states."""
        super().resume(filename, resume_optimizer, resume_param_scheduler,
                       map_location)
        if self._resumed_meta and restore_rng_from_meta(self._resumed_meta):
            self.logger.info('restored the RNG states of the checkpoint')
        else:
            self.logger.warning(
                f'{filename} holds no RNG states: training continues with '
                'freshly seeded generators (not bit-identical to an '
                'uninterrupted run)')

    # ----------------------------------------------------------- saving
    @master_only
    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args: Optional[dict] = None):
        """Save like mmengine, atomically for local folders.

        The meta also holds the resolved experiment
        (:func:`~h2crop.engine.checkpoint_experiment.experiment_record`
        under :data:`~h2crop.engine.checkpoint_experiment.
        EXPERIMENT_META_KEY`), so the weights carry their taxonomy, band
        statistics, window, inputs and levels.
        """
        if self._experiment is None:
            self._experiment = experiment_record(self.cfg) or {}
        meta = dict(meta or {})
        if self._experiment:
            meta[EXPERIMENT_META_KEY] = self._experiment
        local = file_client_args is None and (
            backend_args is None or backend_args.get('backend') in
            (None, 'local')) and '://' not in str(out_dir)
        if not local:
            return super().save_checkpoint(
                out_dir, filename, file_client_args, save_optimizer,
                save_param_scheduler, meta, by_epoch, backend_args)
        tmp_name = f'.{filename}.{os.getpid()}.tmp'
        tmp_path = osp.join(out_dir, tmp_name)
        try:
            super().save_checkpoint(out_dir, tmp_name, None, save_optimizer,
                                    save_param_scheduler, meta, by_epoch,
                                    backend_args)
            with open(tmp_path, 'rb+') as f:
                os.fsync(f.fileno())
            os.replace(tmp_path, osp.join(out_dir, filename))
        finally:
            if osp.exists(tmp_path):
                os.remove(tmp_path)
        _fsync_dir(out_dir)
        saved = (meta or {}).get('epoch', self.epoch + 1) if by_epoch \
            else None
        if saved is not None and saved == self._unsaved_epoch:
            self._unsaved_epoch = None

    # ----------------------------------------------------------- failures
    def call_hook(self, fn_name: str, **kwargs) -> None:
        """Call the hooks, noting when an epoch's weights await saving."""
        if fn_name == 'after_train_epoch':
            self._unsaved_epoch = self.epoch + 1
        elif fn_name == 'before_train_epoch':
            self._unsaved_epoch = None
        super().call_hook(fn_name, **kwargs)

    def _save_emergency(self, err: BaseException) -> Optional[str]:
        """Save the weights of an epoch a failure would lose.

        Called when training fails. After an epoch's iterations and before
        the next epoch starts (hooks, checkpoint writing, validation), the
        model holds that epoch's weights; unless they were saved already,
        they are written with the full training state, so that
        ``--resume <file>`` continues after that epoch.

        Args:
            err: The failure (recorded in the checkpoint's meta).

        Returns:
            The file written (None: nothing to save, or not this rank).
        """
        epoch = self._unsaved_epoch
        if epoch is None or not is_main_process():
            return None
        hook = next((h for h in self.hooks
                     if isinstance(h, H2CropCheckpointHook)), None)
        out_dir = getattr(hook, 'out_dir', None) or self.work_dir
        filename = EMERGENCY_TMPL.format(epoch)
        meta = dict(epoch=epoch, iter=self.iter, emergency=repr(err))
        if hook is not None and get_world_size() == 1:
            # the training streams (validation may have drawn from them)
            meta[RNG_META_KEY] = [hook.training_rng_state()]
        path = osp.join(out_dir, filename)
        try:
            self.save_checkpoint(out_dir, filename, meta=meta)
            atomic_write_text(osp.join(self.work_dir, LAST_CHECKPOINT), path)
        except Exception as save_err:  # the original error matters more
            self.logger.error(f'could not write the emergency checkpoint '
                              f'{path}: {save_err}')
            return None
        return path

    def _emergency_advice(self, path: str, epoch: int) -> str:
        """The sentence that says how to continue from ``path``."""
        config = getattr(self.cfg, 'filename', None) or 'CONFIG'
        return (f'the weights of epoch {epoch} are saved in the emergency '
                f'checkpoint {path}; after fixing the cause, continue with: '
                f'python tools/train.py {config} --work-dir {self.work_dir} '
                f'--resume {path}')

    # ----------------------------------------------------------- DDP
    def wrap_model(self, model_wrapper_cfg: Optional[Dict], model):
        """Wrap for DDP; CPU processes get ``device_ids=None``."""
        if self.distributed and not torch.cuda.is_available():
            model_wrapper_cfg = dict(model_wrapper_cfg or {})
            model_wrapper_cfg.setdefault('type', 'MMDistributedDataParallel')
            model_wrapper_cfg['device_ids'] = None
            model_wrapper_cfg.setdefault('broadcast_buffers', False)
            sync_bn = self.cfg.pop('sync_bn', None)
            if sync_bn is not None:
                self.logger.info(
                    f'sync_bn={sync_bn!r} is not applied on CPU (no '
                    'SyncBatchNorm kernel); rank 0\'s BatchNorm statistics '
                    'are broadcast before each validation instead')
            try:
                return super().wrap_model(model_wrapper_cfg, model)
            finally:
                if sync_bn is not None:
                    self.cfg['sync_bn'] = sync_bn
        return super().wrap_model(model_wrapper_cfg, model)

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """Mmengine's hooks plus buffer broadcasting and skip counting."""
        super().register_hooks(default_hooks, custom_hooks)
        for hook_type in (BroadcastBuffersHook, SkippedTilesHook):
            if not any(isinstance(h, hook_type) for h in self.hooks):
                self.register_hook(hook_type())

    def train(self):
        """Train; a failure says how to go on and loses no finished epoch.

        A bad tile stops the run with a message on where it stopped and
        what to resume from; any failure after an epoch's iterations first
        saves that epoch's weights (:meth:`_save_emergency`).
        """
        try:
            return super().train()
        except Exception as err:
            epoch = self._unsaved_epoch
            path = self._save_emergency(err)
            if isinstance(err, H2CropDataError):
                raise H2CropDataError(explain_data_error(self, err)) from err
            if path is not None:
                advice = self._emergency_advice(path, epoch)
                self.logger.error(f'{type(err).__name__}: {err}\n{advice}')
                if hasattr(err, 'add_note'):  # Python >= 3.11
                    err.add_note(advice)
            raise
