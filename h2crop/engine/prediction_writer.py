"""Test-time hook writing prediction maps and pictures (tools/test.py)."""
import os
import os.path as osp
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from PIL import Image

from h2crop.constants import S2
from h2crop.registry import HOOKS


@HOOKS.register_module()
class PredictionWriterHook(Hook):
    """Write per-tile predictions and visualisations during testing.

    Args:
        out_dir: Folder for ``<sample_id>_<level>.png`` (uint8 class ids).
        show_dir: Folder for ``<sample_id>.png`` figures (S2 composite,
            prediction and label per level).
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

    def before_test(self, runner) -> None:
        """Create the output folders.

        Args:
            runner: The runner of the test.
        """
        for d in (self.out_dir, self.show_dir):
            if d:
                os.makedirs(d, exist_ok=True)

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
        for i, sample in enumerate(outputs or []):
            sid = str(sample.metainfo.get('sample_id', f'{batch_idx}_{i}'))
            levels = tuple(sample.metainfo['levels'])
            pred = sample.pred_sem_seg.data.cpu().numpy().astype(np.uint8)
            if self.out_dir:
                for level, ids in zip(levels, pred):
                    Image.fromarray(ids).save(
                        osp.join(self.out_dir, f'{sid}_{level}.png'))
            if self.show_dir and (self.max_show is None
                                  or self._shown < self.max_show):
                inputs = data_batch['inputs']
                s2 = inputs[i][S2] if isinstance(inputs, list) else \
                    inputs[S2][i]
                gt = sample.gt_sem_seg.data.cpu().numpy() if 'gt_sem_seg' in \
                    sample else None
                ncls = [int(max(pred[k].max(), 0 if gt is None else
                                gt[k].max())) + 1 for k in range(len(levels))]
                fig = plot_tile_predictions(np.asarray(s2.cpu()), gt, pred,
                                            levels, ncls, title=sid)
                fig.savefig(osp.join(self.show_dir, f'{sid}.png'), dpi=80)
                plt.close(fig)
                self._shown += 1
