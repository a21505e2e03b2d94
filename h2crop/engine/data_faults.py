"""Bad tiles met during training: a clear stop, or counted skips.

* Without ``skip_bad_tiles`` (the default) a tile that cannot be read stops
  the run; :func:`explain_data_error` adds where training stopped and which
  checkpoint to resume from to the dataset's message (file and key).
* With the dataset option ``skip_bad_tiles=True`` the dataset replaces the
  tile and records its name in the substitute's ``skipped_tiles``
  metainfo; :class:`SkippedTilesHook` gathers these over all ranks and
  logs the count and the names when training ends.
"""
from typing import Dict, Optional

from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook
from mmengine.runner import find_latest_checkpoint

from h2crop.registry import HOOKS

#: Metainfo key under which the dataset lists the tiles it skipped.
SKIPPED_KEY = 'skipped_tiles'


@HOOKS.register_module()
class SkippedTilesHook(Hook):
    """Count the tiles skipped by ``skip_bad_tiles`` and report them.

    :class:`~h2crop.engine.H2CropRunner` registers it itself.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self.skipped: Dict[str, int] = {}

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Collect the names carried by the batch's samples."""
        samples = (data_batch or {}).get('data_samples') or []
        for sample in samples:
            metainfo = getattr(sample, 'metainfo', {})
            for sid in metainfo.get(SKIPPED_KEY, ()):
                self.skipped[sid] = self.skipped.get(sid, 0) + 1

    def after_train(self, runner) -> None:
        """Log the skipped tiles of every rank (once, on rank 0)."""
        merged: Dict[str, int] = {}
        for part in all_gather_object(self.skipped):
            for sid, count in part.items():
                merged[sid] = merged.get(sid, 0) + count
        runner.message_hub.update_info('skipped_tiles', merged)
        if not merged or not is_main_process():
            return
        names = ', '.join(f'{sid} ({n}x)' for sid, n in sorted(
            merged.items()))
        runner.logger.warning(
            f'skip_bad_tiles: {sum(merged.values())} read(s) of '
            f'{len(merged)} bad tile(s) were skipped during training: '
            f'{names}; check them with tools/misc/check_dataset.py')


def explain_data_error(runner, err: Exception) -> str:
    """The dataset's message plus where training stopped and how to go on."""
    last = find_latest_checkpoint(runner.work_dir)
    resume = (f'the last checkpoint {last} is intact: after fixing or '
              'removing the tile, continue with --resume' if last else
              'no checkpoint was written yet')
    return (f'{err}\ntraining stopped at epoch {runner.epoch + 1}, iteration '
            f'{runner.iter + 1} on this tile; {resume} (or set '
            'train_dataloader.dataset.skip_bad_tiles=True to skip bad '
            'tiles)')
