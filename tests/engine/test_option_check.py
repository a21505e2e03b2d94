"""Every config / --cfg-options key is checked before anything is built."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook

from h2crop.apis.inference import resolve_inference_cfg
from h2crop.engine.experiment import ExperimentConfigError
from h2crop.engine.hooks import H2CropCheckpointHook
from h2crop.engine.option_check import (
    OptionKeyError,
    accepted_keys,
    check_config_keys,
    check_option_keys,
    merge_checked,
)
from h2crop.engine.runner_builder import prepare_cfg

from .test_runner import _load_tool
from .tiny_cfg import DEMO, REPO

PAPER = osp.join(REPO, 'configs', 'hyper_benefits', 'crops_S2_H_P_jun.py')


def _train_args(config, *options, work_dir='work_dirs/never'):
    argv = [config, '--work-dir', work_dir]
    if options:
        argv += ['--cfg-options', *options]
    return _load_tool('train').parse_args(argv)


@pytest.mark.parametrize('option,message', [
    # a hook: mmengine hands unknown keys to save_checkpoint after epoch 1
    ('default_hooks.checkpoint.intervall=1',
     "default_hooks.checkpoint.intervall: H2CropCheckpointHook takes no "
     "'intervall'; did you mean 'interval'?"),
    ('train_dataloader.batch_sise=2',
     "train_dataloader.batch_sise: the dataloader (torch DataLoader) takes "
     "no 'batch_sise'; did you mean 'batch_size'"),
    ('model.decode_head.dropuot=0.1',
     "model.decode_head: H2CropSegmentor takes no 'decode_head'; did you "
     "mean 'head'?"),
    ('model.neck.norm_cfg.momentun=0.1',
     "model.neck.norm_cfg.momentun: BatchNorm2d takes no 'momentun'; did "
     "you mean 'momentum'?"),
    ('optim_wrapper.optimizer.weight_decy=0.1',
     "optim_wrapper.optimizer.weight_decy: AdamW takes no 'weight_decy'; "
     "did you mean 'weight_decay'?"),
    ('param_scheduler.1.eta_mni=0',
     "param_scheduler.1.eta_mni: CosineAnnealingLR takes no 'eta_mni'"),
    ('train_dataloader.dataset.pipeline.0.tile_sise=96',
     "train_dataloader.dataset.pipeline.0.tile_sise: LoadH2CropH5 takes no "
     "'tile_sise'; did you mean 'tile_size'?"),
    ('test_evaluator.exclude_backgrund=True',
     "test_evaluator.exclude_backgrund: HierarchicalSegMetric takes no "
     "'exclude_backgrund'; did you mean 'exclude_background'?"),
    ('model.test_cfg.decod=consistent',
     "model.test_cfg.decod: H2CropSegmentor's test_cfg takes no 'decod'; "
     "did you mean 'decode'?"),
    ('model.enmap_encoder.spatial_vit.num_layer=2',
     "model.enmap_encoder.spatial_vit.num_layer: "
     "EnMAPSpectralSpatialEncoder's spatial_vit takes no 'num_layer'"),
    ('env_cfg.cudnn_benchmak=True',
     "env_cfg.cudnn_benchmak: env_cfg (Runner.setup_env) takes no "
     "'cudnn_benchmak'"),
    ('model.neck.type=FusionDecodr',
     "model.neck.type: no model 'FusionDecodr' in the h2crop or mmengine "
     "registries; did you mean 'FusionDecoder'?"),
    ('custom_hooks.3.interval=2',
     'custom_hooks is a list of 1 item(s)'),
    ('tile_sise=48', "tile_sise: no such config key; did you mean "
     "'tile_size'?"),
])
def test_a_typo_at_any_depth_is_one_line_before_the_run(option, message):
    with pytest.raises(OptionKeyError) as err:
        prepare_cfg(_train_args(DEMO, option), 'train')
    assert message in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    # the option's own key is named, not the config file
    assert DEMO not in str(err.value)


def test_valid_options_pass():
    cfg = prepare_cfg(_train_args(
        DEMO, 'model.test_cfg.decode=consistent',
        'env_cfg.dist_cfg.timeout=600', 'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=2', 'param_scheduler.1.eta_min=0',
        'model.data_preprocessor.cutmix.prob=0.3', 'max_epochs=2',
        'optim_wrapper.optimizer.betas=[0.9,0.99]'), 'train')
    assert cfg.model.test_cfg.decode == 'consistent'
    assert cfg.default_hooks.checkpoint.interval == 2
    assert cfg.model.data_preprocessor.cutmix.prob == 0.3


def test_a_typo_in_a_users_config_file_names_the_file(tmp_path):
    user = tmp_path / 'my_run.py'
    user.write_text(
        f"_base_ = [{DEMO!r}]\n"
        "default_hooks = dict(checkpoint=dict(intervall=2))\n"
        "optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', "
        "lr=0.1, momentun=0.9))\n")
    work_dir = tmp_path / 'work'
    with pytest.raises(SystemExit) as err:
        _load_tool('train').main([str(user), '--work-dir', str(work_dir)])
    text = str(err.value)
    assert text.startswith('error: ')
    assert set(text[len('error: '):].splitlines()) == {
        f"{user}: default_hooks.checkpoint.intervall: "
        "H2CropCheckpointHook takes no 'intervall'; did you mean "
        "'interval'?",
        f"{user}: optim_wrapper.optimizer.momentun: SGD takes no "
        "'momentun'; did you mean 'momentum'?"}
    assert not work_dir.exists()  # stopped before the Runner made folders


def test_delete_replaces_what_a_dict_may_hold(tmp_path):
    user = tmp_path / 'sgd.py'
    user.write_text(
        f"_base_ = [{DEMO!r}]\n"
        "optim_wrapper = dict(optimizer=dict(_delete_=True, type='SGD', "
        "lr=0.1, momentum=0.9))\n")
    cfg = merge_checked(Config.fromfile(str(user)))
    assert cfg.optim_wrapper.optimizer.to_dict() == dict(
        type='SGD', lr=0.1, momentum=0.9)


def test_a_key_added_to_a_plain_dict_is_refused():
    with pytest.raises(OptionKeyError, match=r"norm_mean\.S2: the config "
                       r"has no 'S2' under norm_mean \(it holds enmap, s2\);"
                       r" did you mean 's2'\?"):
        merge_checked(Config.fromfile(DEMO), {'norm_mean.S2': [0.0]})
    # a key the config holds passes
    merge_checked(Config.fromfile(DEMO), {'norm_mean.s2': [0.0] * 10})


def test_top_level_keys_of_the_options():
    cfg = Config.fromfile(PAPER)
    check_option_keys(cfg, {'tile_size': 48, 'model.num_frames': 6,
                            'work_dir': 'w', 'experiment_name': 'x'})
    with pytest.raises(ExperimentConfigError, match='tile_sise'):
        check_option_keys(cfg, {'tile_sise': 48})
    with pytest.raises(ExperimentConfigError, match='max_epochs'):
        prepare_cfg(_train_args(PAPER, 'max_epoch=1'), 'train')


def test_test_and_inference_use_the_same_check(tiny_model_files):
    config, ckpt, _ = tiny_model_files
    args = _load_tool('test').parse_args(
        [config, ckpt, '--cfg-options', 'model.test_cfg.tua=0.6'])
    with pytest.raises(OptionKeyError, match="did you mean 'tau'"):
        prepare_cfg(args, 'test')
    with pytest.raises(OptionKeyError, match="did you mean 'mode'"):
        resolve_inference_cfg(config, {'model.test_cfg.mdoe': 'slide'})
    # a config dumped by a run (resolved) passes as it is
    check_config_keys(Config.fromfile(config), source=config)


class _Open:
    def __init__(self, a: int = 1, **kwargs) -> None:
        self.kwargs = kwargs  # kept, not passed on: cannot be checked


class _Forwarding(_Open):
    def __init__(self, b: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)


class _Closed:
    def __init__(self, c: int = 3) -> None:
        self.c = c


class _ForwardsToClosed(_Closed):
    def __init__(self, d: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)


def test_accepted_keys_follow_kwargs_only_where_verified():
    assert accepted_keys(_Closed) == {'c'}
    assert accepted_keys(_ForwardsToClosed) == {'c', 'd'}
    assert accepted_keys(_Open) is None
    assert accepted_keys(_Forwarding) is None  # its parent keeps them
    # the hook's **kwargs reach runner.save_checkpoint, which takes no more
    names = set(accepted_keys(CheckpointHook))
    assert names == set(accepted_keys(H2CropCheckpointHook))
    assert {'interval', 'save_best', 'max_keep_ckpts'} <= names
    assert 'intervall' not in names

