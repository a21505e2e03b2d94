"""A checkpoint carries its experiment: used where unstated, else checked."""
import csv
import logging
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger

from h2crop.apis import inference_model, init_model
from h2crop.constants import ENMAP, H5_DIR, PRIOR, S2, TAXONOMY_FILE
from h2crop.datasets.h5io import read_tile
from h2crop.engine.checkpoint_experiment import (
    EXPERIMENT_META_KEY,
    ExperimentMismatchError,
    reconcile_experiment,
)
from h2crop.engine.experiment import ExperimentConfigError
from h2crop.taxonomy import Taxonomy, embed_taxonomy, load_taxonomy

from ..conftest import save_like_training
from .test_runner import _load_tool


def _tile(root):
    sid = open(osp.join(root, 'data_lists', 'test.txt')).read().split()[0]
    return read_tile(osp.join(root, H5_DIR, sid + '.h5'), (S2, ENMAP, PRIOR))


def _renamed_taxonomy(src: str, dst: str, new_name: str) -> str:
    """A copy of a taxonomy CSV whose first level-4 class is renamed."""
    with open(src, newline='', encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    rows[0]['level4_name'] = new_name
    with open(dst, 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return dst


class _Catch(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_taxonomy_table_round_trip_and_digest(tiny_dataset_96, tmp_path):
    path = osp.join(tiny_dataset_96, TAXONOMY_FILE)
    tax = load_taxonomy(path)
    again = Taxonomy.from_rows(tax.to_rows(), source='rows')
    assert again.names == tax.names and again.codes == tax.codes
    for k in range(1, 4):
        np.testing.assert_array_equal(again.parents[k], tax.parents[k])
    # the digest follows the classes, not the file
    copy = shutil.copy(path, tmp_path / 'copy.csv')
    assert load_taxonomy(str(copy)).digest() == tax.digest()
    spec = embed_taxonomy(tax)
    assert load_taxonomy(spec).digest() == tax.digest()
    renamed = _renamed_taxonomy(path, str(tmp_path / 'r.csv'), 'other')
    assert load_taxonomy(renamed).digest() != tax.digest()
    spec['rows'][0]['level4_name'] = 'tampered'
    with pytest.raises(ValueError, match='digest'):
        load_taxonomy(spec)
    assert embed_taxonomy(load_taxonomy(None)) is None


def test_training_writes_the_experiment_into_every_checkpoint(
        tiny_model_files):
    # the Runner's own save is covered by test_runner's smoke training;
    # here: what a record holds, read back from the file
    cfg_path, ckpt, root = tiny_model_files
    meta = torch.load(ckpt, weights_only=False)['meta']
    record = meta[EXPERIMENT_META_KEY]
    tax = load_taxonomy(osp.join(root, TAXONOMY_FILE))
    assert record['taxonomy_digest'] == tax.digest()
    assert len(record['taxonomy']['rows']) == tax.num_crop_classes[-1]
    cfg = Config.fromfile(cfg_path)
    assert record['end_month'] == cfg.end_month
    assert record['tile_size'] == cfg.tile_size
    assert tuple(record['modalities']) == tuple(cfg.modalities)
    assert tuple(record['levels']) == tuple(cfg.levels)
    assert record['norm_mean'][S2] == pytest.approx(list(cfg.norm_mean[S2]))
    assert record['any_window'] is None
    assert record['h2crop_version']


def test_the_trap_maps_with_the_training_taxonomy_or_stops(
        tiny_model_files, tmp_path):
    """Issue 16: a config whose data root has another taxonomy."""
    cfg_path, ckpt, root = tiny_model_files
    trained = load_taxonomy(osp.join(root, TAXONOMY_FILE))
    other_root = tmp_path / 'other'
    other_root.mkdir()
    other = _renamed_taxonomy(osp.join(root, TAXONOMY_FILE),
                              str(other_root / TAXONOMY_FILE), 'maize_x')
    cfg = Config.fromfile(cfg_path)
    cfg.pop('taxonomy', None)
    cfg.data_root = str(other_root)  # the taxonomy follows data_root
    mapped = init_model(cfg, ckpt,
                        cfg_options={'model.test_cfg.decode': 'consistent'})
    # the config states no taxonomy: the checkpoint's is used
    assert mapped.taxonomy.digest() == trained.digest()
    assert mapped.taxonomy.level_names('level4') == \
        trained.level_names('level4')
    a = _tile(root)
    out = inference_model(mapped, a[S2], a[ENMAP], a['prior'])
    assert trained.is_consistent(out['pred'])  # paths of the training tree
    assert mapped.provenance['taxonomy_digest'] == trained.digest()
    assert mapped.provenance['checkpoint'] == osp.abspath(ckpt)
    # a config that states the other taxonomy stops before any pixel
    cfg.taxonomy = other
    with pytest.raises(ExperimentMismatchError,
                       match=r"taxonomy differs from the checkpoint's: "
                       r"same class counts, level4 id 1 named 'maize_x'"):
        init_model(cfg, ckpt)
    # --allow-experiment-mismatch: warned, the config's taxonomy wins
    model = init_model(cfg, ckpt, allow_experiment_mismatch=True)
    assert model.taxonomy.level_names('level4')[1] == 'maize_x'


@pytest.mark.parametrize('key,value,phrase', [
    ('end_month', 12, "end_month=12 differs from the checkpoint's "
     'end_month=6'),
    ('modalities', ('s2', 'enmap'), 'modalities='),
    ('levels', ('level1', 'level2'), 'levels='),
    ('tile_size', 48, 'tile_size=48 differs'),
])
def test_each_choice_contradicting_the_checkpoint_is_refused(
        tiny_model_files, key, value, phrase):
    cfg_path, ckpt, _ = tiny_model_files
    with pytest.raises(ExperimentMismatchError, match=phrase) as err:
        init_model(cfg_path, ckpt, cfg_options={key: value})
    assert '--allow-experiment-mismatch' in str(err.value)
    assert '\n' not in str(err.value)


def test_band_statistics_mismatch_names_the_band(tiny_model_files):
    cfg_path, ckpt, _ = tiny_model_files
    cfg = Config.fromfile(cfg_path)
    mean = {k: list(v) for k, v in cfg.norm_mean.items()}
    mean[S2][2] += 100.0
    with pytest.raises(ExperimentMismatchError,
                       match=r"norm_mean differs from the checkpoint's: s2 "
                       r'band 3'):
        init_model(cfg_path, ckpt, cfg_options={'norm_mean': mean})
    model = init_model(cfg_path, ckpt, cfg_options={'norm_mean': mean},
                       allow_experiment_mismatch=True)
    assert model.data_preprocessor.s2_mean.flatten()[2].item() == \
        pytest.approx(mean[S2][2])


def test_unstated_choices_come_from_the_checkpoint(tiny_model_files):
    cfg_path, ckpt, _ = tiny_model_files
    meta = torch.load(ckpt, weights_only=False)['meta']
    record = meta[EXPERIMENT_META_KEY]
    cfg = Config.fromfile(cfg_path)
    for key in ('norm_mean', 'norm_std', 'end_month', 'taxonomy'):
        cfg.pop(key, None)
    logger = MMLogger.get_instance('h2crop_test_ckpt_exp')
    catch = _Catch()
    logger.addHandler(catch)
    try:
        out = reconcile_experiment(cfg, record, ckpt, logger=logger)
    finally:
        logger.removeHandler(catch)
    assert out.end_month == record['end_month']
    assert out.norm_std == record['norm_std']
    assert out.taxonomy['digest'] == record['taxonomy_digest']
    assert any('from the checkpoint' in m and 'end_month' in m
               for m in catch.messages)


def test_checkpoint_alone_equals_config_and_checkpoint(tiny_model_files):
    cfg_path, ckpt, root = tiny_model_files
    a = _tile(root)
    with_cfg = init_model(cfg_path, ckpt)
    alone = init_model(None, ckpt)
    assert alone.taxonomy.digest() == with_cfg.taxonomy.digest()
    assert alone.provenance['config'] == "the checkpoint's own"
    x = inference_model(with_cfg, a[S2], a[ENMAP], a['prior'],
                        return_probs=True)
    y = inference_model(alone, a[S2], a[ENMAP], a['prior'],
                        return_probs=True)
    np.testing.assert_array_equal(x['pred'], y['pred'])
    for level, probs in x['probs'].items():
        assert np.array_equal(probs, y['probs'][level]), level


def test_checkpoint_without_record_still_loads(tiny_model_files, tmp_path):
    cfg_path, ckpt, _ = tiny_model_files
    state = torch.load(ckpt, weights_only=False)['state_dict']
    old = str(tmp_path / 'old.pth')
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, old)
    model = init_model(cfg_path, old)
    assert model.provenance['experiment_record'].startswith('absent')
    with pytest.raises(ValueError, match='carries no config'):
        init_model(None, old)


def test_tools_test_refuses_data_of_another_taxonomy(tiny_model_files,
                                                      tmp_path):
    cfg_path, ckpt, root = tiny_model_files
    model = init_model(cfg_path, ckpt)
    renamed = _renamed_taxonomy(osp.join(root, TAXONOMY_FILE),
                                str(tmp_path / 'renamed.csv'), 'rye_x')
    model.cfg.taxonomy = renamed
    from h2crop.engine.experiment import resolve_experiment
    model.cfg = resolve_experiment(model.cfg)
    other = save_like_training(model, str(tmp_path / 'other.pth'))
    tool = _load_tool('test')
    args = tool.parse_args([cfg_path, other, '--work-dir',
                            str(tmp_path / 'w')])
    from h2crop.engine.runner_builder import prepare_cfg
    with pytest.raises(ExperimentMismatchError,
                       match="level4 id 1 named '.*' vs 'rye_x'"):
        prepare_cfg(args, 'test')
    assert not osp.exists(tmp_path / 'w')
    args = tool.parse_args([cfg_path, other, '--work-dir',
                            str(tmp_path / 'w'),
                            '--allow-experiment-mismatch'])
    from h2crop.engine.experiment import experiment_choices
    used = experiment_choices(prepare_cfg(args, 'test'))['taxonomy']
    assert used == osp.join(root, TAXONOMY_FILE)  # the data's, warned


def test_infer_checkpoint_alone_writes_provenance(tiny_model_files,
                                                  tmp_path, capsys):
    import sys

    import h5py
    sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools'))
    import infer
    cfg_path, ckpt, root = tiny_model_files
    sid = open(osp.join(root, 'data_lists', 'test.txt')).read().split()[0]
    tile = osp.join(root, H5_DIR, sid + '.h5')
    out = tmp_path / 'alone'
    infer.main([ckpt, '--h5', tile, '--out', str(out), '--no-progress'])
    out2 = tmp_path / 'both'
    infer.main([cfg_path, ckpt, '--h5', tile, '--out', str(out2),
                '--no-progress'])
    with h5py.File(out / f'{sid}_pred.h5') as a, \
            h5py.File(out2 / f'{sid}_pred.h5') as b:
        np.testing.assert_array_equal(a['pred'][()], b['pred'][()])
        digest = load_taxonomy(osp.join(root, TAXONOMY_FILE)).digest()
        assert a.attrs['taxonomy_digest'] == digest
        assert a.attrs['checkpoint'] == osp.abspath(ckpt)
    with pytest.raises(SystemExit, match="end_month=12 differs"):
        infer.main([cfg_path, ckpt, '--h5', tile, '--out',
                    str(tmp_path / 'x'), '--cfg-options', 'end_month=12'])
    with pytest.raises(SystemExit):
        infer.main([ckpt, cfg_path, '--h5', tile, '--out',
                    str(tmp_path / 'y')])
    assert 'is a config; the last path must be the checkpoint' in \
        capsys.readouterr().err


def test_experiment_config_error_is_the_base():
    assert issubclass(ExperimentMismatchError, ExperimentConfigError)


def test_any_window_maximum_is_checked_after_resolution():
    from h2crop.engine.checkpoint_experiment import check_any_window_maximum
    cfg = Config(dict(model=dict(any_window=dict(end_months=(6, 12)),
                                 num_frames=12,
                                 modalities=('s2', 'enmap', 'prior'))))
    same = dict(any_window=dict(num_frames=12,
                                modalities=['s2', 'enmap', 'prior']))
    check_any_window_maximum(cfg, same, 'a.pth')  # agrees
    check_any_window_maximum(cfg, None, 'a.pth')  # no record: unchecked
    shorter = dict(any_window=dict(num_frames=8,
                                   modalities=['s2', 'enmap', 'prior']))
    with pytest.raises(ExperimentMismatchError,
                       match=r'any-window maximum .* differs'):
        check_any_window_maximum(cfg, shorter, 'a.pth')
    dedicated = dict(any_window=None)
    with pytest.raises(ExperimentMismatchError, match='any-window'):
        check_any_window_maximum(cfg, dedicated, 'a.pth')
