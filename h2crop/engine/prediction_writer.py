"""Test-time hook writing prediction maps and pictures (tools/test.py)."""
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from h2crop.constants import S2
from h2crop.registry import HOOKS

#: Suffix of the per-level class tables written into ``out_dir``.
CLASSES_SUFFIX = '_classes.csv'


def _model(runner):
    return runner.model.module if is_model_wrapper(runner.model) else \
        runner.model


def _level_names(runner, level: str) -> List[str]:
    """Class names of a level (the model's taxonomy, as tools/infer.py)."""
    taxonomy = getattr(_model(runner), 'taxonomy', None)
    if taxonomy is not None:
        return list(taxonomy.level_names(level))
    return list(runner.test_dataloader.dataset.metainfo['classes'][level])


@HOOKS.register_module()
class PredictionWriterHook(Hook):
    """Write per-tile predictions and visualisations during testing.

    The colours are those of the maps and legends of ``tools/infer.py``
    (:func:`~h2crop.visualization.level_palette`).

    Args:
        out_dir: Folder for ``<sample_id>_<level>.png``: paletted PNGs whose
            pixel values are the class ids and whose palette holds the
            level's colours; ``<level>_classes.csv`` (id, name, red, green,
            blue) names them.
        show_dir: Folder for ``<sample_id>.png`` figures (S2 composite,
            prediction and label per level, with a legend of the classes
            present and their names).
        max_show: Draw at most this many tiles (None: all).
    """

    priority = 'LOW'

    def __init__(self, out_dir: Optional[str] = None,
                 show_dir: Optional[str] = None,
                 max_show: Optional[int] = None) -> None:
        self.out_dir = out_dir
        self.show_dir = show_dir
        self.max_show = max_show
        self._shown = 0
        self._names: dict = {}

    def before_test(self, runner) -> None:
        """Create the output folders and write the class tables.

        Args:
            runner: The runner of the test.
        """
        from h2crop.visualization.legend import write_class_table
        for d in (self.out_dir, self.show_dir):
            if d:
                os.makedirs(d, exist_ok=True)
        levels = getattr(_model(runner), 'levels', None) or \
            runner.test_dataloader.dataset.metainfo['levels']
        self._names = {lv: _level_names(runner, lv) for lv in levels}
        if self.out_dir:
            for level, names in self._names.items():
                write_class_table(
                    osp.join(self.out_dir, level + CLASSES_SUFFIX), names)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        """Write the predictions (and figures) of one test batch.

        Args:
            runner: The runner of the test.
            batch_idx: Index of the batch in the test dataloader.
            data_batch: The batch fed to the model (its ``inputs`` give the
                S2 composite of the figures).
            outputs: Predicted data samples of the batch.
        """
        import matplotlib.pyplot as plt

        from h2crop.visualization import plot_tile_predictions
        from h2crop.visualization.legend import write_palette_png
        for i, sample in enumerate(outputs or []):
            sid = str(sample.metainfo.get('sample_id', f'{batch_idx}_{i}'))
            levels = tuple(sample.metainfo['levels'])
            names = [self._names[lv] for lv in levels]
            pred = sample.pred_sem_seg.data.cpu().numpy().astype(np.uint8)
            if self.out_dir:
                for level, ids, lv_names in zip(levels, pred, names):
                    write_palette_png(ids, lv_names, osp.join(
                        self.out_dir, f'{sid}_{level}.png'))
            if self.show_dir and (self.max_show is None
                                  or self._shown < self.max_show):
                inputs = data_batch['inputs']
                s2 = inputs[i][S2] if isinstance(inputs, list) else \
                    inputs[S2][i]
                gt = sample.gt_sem_seg.data.cpu().numpy() if 'gt_sem_seg' in \
                    sample else None
                fig = plot_tile_predictions(
                    np.asarray(s2.cpu()), gt, pred, levels,
                    [len(n) for n in names], title=sid, names=names)
                fig.savefig(osp.join(self.show_dir, f'{sid}.png'), dpi=100,
                            bbox_inches='tight')
                plt.close(fig)
                self._shown += 1
