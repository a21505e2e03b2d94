"""tools/test.py --out / --show-dir write maps a person can read."""
import csv
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from PIL import Image

from h2crop.apis import init_model
from h2crop.engine.prediction_writer import PredictionWriterHook
from h2crop.engine.runner_builder import prepare_cfg
from h2crop.engine.work_dir import WorkDirError
from h2crop.mapping.scene import class_table_rows
from h2crop.visualization import plot_tile_predictions

from .test_runner import _load_tool


def _sample(sid, levels, pred, gt):
    sample = SegDataSample(metainfo=dict(sample_id=sid, levels=levels))
    sample.pred_sem_seg = PixelData(data=torch.as_tensor(pred))
    sample.gt_sem_seg = PixelData(data=torch.as_tensor(gt))
    return sample


@pytest.fixture(scope='module')
def tiny_model(tiny_model_files):
    config, ckpt, _ = tiny_model_files
    return init_model(config, ckpt)


def test_out_writes_palette_pngs_in_the_colours_of_infer(tiny_model,
                                                         tmp_path):
    model = tiny_model
    levels = tuple(model.levels)
    rng = np.random.default_rng(0)
    counts = [len(model.taxonomy.level_names(lv)) for lv in levels]
    pred = np.stack([rng.integers(0, n, (12, 9)) for n in counts])
    pred[3, 0, 0] = counts[3] - 1  # the last id, e.g. 101, is not black
    gt = np.stack([rng.integers(0, n, (12, 9)) for n in counts])
    runner = SimpleNamespace(model=model, test_dataloader=None)
    hook = PredictionWriterHook(out_dir=str(tmp_path / 'out'),
                                show_dir=str(tmp_path / 'vis'))
    hook.before_test(runner)
    batch = dict(inputs={'s2': torch.zeros(1, 2, 10, 12, 9)})
    hook.after_test_iter(runner, 0, batch,
                         [_sample('t1', levels, pred, gt)])

    # infer's colours: the class CSV beside a scene map
    infer_rows = class_table_rows(model)
    for k, level in enumerate(levels):
        png = Image.open(tmp_path / 'out' / f't1_{level}.png')
        assert png.mode == 'P'
        assert np.array_equal(np.asarray(png), pred[k])  # ids unchanged
        palette = np.asarray(png.getpalette()[:3 * counts[k]]).reshape(
            -1, 3)
        expected = np.array([row[4:7] for row in infer_rows
                             if row[1] == level])
        assert np.array_equal(palette, expected)
        with open(tmp_path / 'out' / f'{level}_classes.csv') as f:
            rows = list(csv.reader(f))
        assert rows[0] == ['id', 'name', 'red', 'green', 'blue']
        assert [r[1] for r in rows[1:]] == list(
            model.taxonomy.level_names(level))
        assert [[int(v) for v in r[2:]] for r in rows[1:]] == \
            expected.tolist()
    assert osp.isfile(tmp_path / 'vis' / 't1.png')


def test_show_dir_panels_have_a_legend_of_the_classes_present():
    names = [['background', 'wheat', 'maize', 'rape']]
    pred = np.array([[[0, 1], [1, 1]]])
    gt = np.array([[[0, 2], [2, 2]]])
    fig = plot_tile_predictions(np.zeros((2, 10, 2, 2)), gt, pred,
                                ('level1', ), [4], names=names)
    labels = [t.get_text() for ax in fig.axes if ax.get_legend()
              for t in ax.get_legend().get_texts()]
    assert sorted(labels) == ['0: background', '1: wheat', '2: maize']


def test_test_outputs_are_not_overwritten(tiny_model_files, tmp_path):
    config, ckpt, _ = tiny_model_files
    out = tmp_path / 'preds'
    out.mkdir()
    (out / 'a_level1.png').write_bytes(b'')
    test = _load_tool('test')
    argv = [config, ckpt, '--work-dir', str(tmp_path / 'w'), '--out',
            str(out), '--show-dir', str(tmp_path / 'vis')]
    with pytest.raises(WorkDirError, match=r'--out .*preds already holds 1 '
                       r'file\(s\) \(e.g. a_level1.png\); pass --overwrite'):
        prepare_cfg(test.parse_args(argv), 'test')
    cfg = prepare_cfg(test.parse_args(argv + ['--overwrite']), 'test')
    assert cfg.custom_hooks[-1]['out_dir'] == str(out)
