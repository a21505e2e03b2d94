"""Tests of the AgriFM weight loader, initializer and converter."""
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch

from h2crop.models.backbones.swin3d import S2TemporalSwin
from h2crop.models.weights import (
    fold_patch_kernel,
    load_agrifm_weights,
    map_agrifm_state_dict,
)
from h2crop.registry import MODELS

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTER = osp.join(REPO_ROOT, 'tools', 'model_converters',
                     'agrifm2h2crop.py')
TINY = dict(in_channels=10, embed_dims=8, depths=(2, 2, 2, 2),
            num_heads=(1, 2, 2, 4), window_size=(2, 3, 3), num_frames=6)


def _encoder(seed: int = 0, **kwargs) -> S2TemporalSwin:
    torch.manual_seed(seed)
    model = S2TemporalSwin(**dict(TINY, **kwargs))
    model.init_weights()
    return model


@pytest.fixture
def source() -> S2TemporalSwin:
    """The 'pretrained' encoder whose backbone the fake files carry."""
    return _encoder(seed=123)


def _agrifm_state(source: S2TemporalSwin) -> 'OrderedDict[str, torch.Tensor]':
    """Released AgriFM layout at tiny dims (temporal patch kernel 4)."""
    torch.manual_seed(7)
    c = source.embed_dims
    state = OrderedDict()
    state['encoder.S2_patch_emd.weights'] = torch.randn(c, 10, 4, 4, 4)
    state['encoder.S2_patch_emd.bias'] = torch.randn(c)
    state['encoder.HLSL30_patch_emd.weights'] = torch.randn(c, 6, 4, 4, 4)
    state['encoder.HLSL30_patch_emd.bias'] = torch.randn(c)
    state['encoder.Modis_patch_emd.weights'] = torch.randn(c, 7, 4, 4, 4)
    state['encoder.Modis_patch_emd.bias'] = torch.randn(c)
    for name, module in source.named_modules():
        if hasattr(module, 'relative_position_index'):
            state[f'encoder.{name}.relative_position_index'] = \
                module.relative_position_index.clone()
    for key, value in source.state_dict().items():
        if key.startswith('backbone.'):
            state[f'encoder.{key}'] = value.clone()
    return state


def _num_blocks() -> int:
    return sum(TINY['depths'])


def _assert_backbone_equal(a: S2TemporalSwin, b: S2TemporalSwin) -> None:
    sb = b.state_dict()
    for key, value in a.state_dict().items():
        if key.startswith('backbone.'):
            assert torch.equal(value, sb[key]), key


@pytest.mark.parametrize('layout', ['plain', 'state_dict', 'module'])
def test_loader_reports_each_layout(tmp_path, source, layout):
    state = _agrifm_state(source)
    if layout == 'module':
        state = OrderedDict((f'module.{k}', v) for k, v in state.items())
    obj = dict(state_dict=state, meta=dict(epoch=3)) \
        if layout == 'state_dict' else state
    path = str(tmp_path / 'AgriFM.pth')
    torch.save(obj, path)
    target = _encoder(seed=1)
    fresh_patch = target.patch_emd.proj.weight.detach().clone()
    report = load_agrifm_weights(target, path)
    _assert_backbone_equal(source, target)
    n_backbone = sum(k.startswith('backbone.') for k in source.state_dict())
    assert report['loaded'] == n_backbone
    assert report['missing'] == ['patch_emd.proj.weight',
                                 'patch_emd.proj.bias']
    assert report['skipped'] == dict(other_sensors=4, buffers=_num_blocks(),
                                     unrecognised=0)
    assert report['patch_embed'] == 'reinit'
    assert torch.equal(target.patch_emd.proj.weight, fresh_patch)


def test_fold_policy_sums_temporal_tap_pairs(tmp_path, source):
    state = _agrifm_state(source)
    path = str(tmp_path / 'AgriFM.pth')
    torch.save(state, path)
    target = _encoder(seed=1)
    report = load_agrifm_weights(target, path, patch_kernel_policy='fold')
    stored = state['encoder.S2_patch_emd.weights']
    want = torch.stack([stored[:, :, 0] + stored[:, :, 1],
                        stored[:, :, 2] + stored[:, :, 3]], dim=2)
    torch.testing.assert_close(target.patch_emd.proj.weight, want)
    assert torch.equal(target.patch_emd.proj.bias,
                       state['encoder.S2_patch_emd.bias'])
    assert report['patch_embed'] == 'fold' and report['missing'] == []
    # A constant-in-time input gives the same response as the 4-tap kernel.
    x = torch.randn(1, 10, 1, 4, 4).expand(1, 10, 4, 4, 4)
    y4 = torch.nn.functional.conv3d(x, stored, stride=(4, 4, 4))
    y2 = torch.nn.functional.conv3d(x[:, :, :2], want, stride=(2, 4, 4))
    torch.testing.assert_close(y4, y2, rtol=1e-4, atol=1e-4)


def test_fold_rejects_incompatible_kernels():
    with pytest.raises(ValueError, match='fold'):
        fold_patch_kernel(torch.randn(8, 10, 3, 4, 4), (8, 10, 2, 4, 4))
    with pytest.raises(ValueError, match='fold'):
        fold_patch_kernel(torch.randn(8, 10, 4, 2, 2), (8, 10, 2, 4, 4))


def test_missing_backbone_tensor_raises(tmp_path, source):
    state = _agrifm_state(source)
    del state['encoder.backbone.layers.2.blocks.1.mlp.fc2.weight']
    path = str(tmp_path / 'broken.pth')
    torch.save(state, path)
    with pytest.raises(RuntimeError, match='layers.2.blocks.1.mlp.fc2'):
        load_agrifm_weights(_encoder(), path)
    report = load_agrifm_weights(_encoder(), path, strict_backbone=False)
    assert 'backbone.layers.2.blocks.1.mlp.fc2.weight' in report['missing']


def test_backbone_shape_mismatch_raises(tmp_path, source):
    state = _agrifm_state(source)
    state['encoder.backbone.norm.weight'] = torch.ones(3)
    path = str(tmp_path / 'mismatch.pth')
    torch.save(state, path)
    with pytest.raises(RuntimeError, match='backbone.norm.weight'):
        load_agrifm_weights(_encoder(), path)


def test_file_without_backbone_raises(tmp_path):
    path = str(tmp_path / 'other.pth')
    torch.save({'decoder.weight': torch.ones(2)}, path)
    with pytest.raises(RuntimeError, match='no backbone'):
        load_agrifm_weights(_encoder(), path)


def test_missing_file_tells_where_to_put_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='checkpoints/'):
        load_agrifm_weights(_encoder(), str(tmp_path / 'AgriFM.pth'))
    model = S2TemporalSwin(**TINY, init_cfg=dict(
        type='AgriFM', checkpoint=str(tmp_path / 'none.pth')))
    with pytest.raises(FileNotFoundError, match='never downloads'):
        model.init_weights()


def test_init_cfg_loads_after_default_init(tmp_path, source):
    path = str(tmp_path / 'AgriFM.pth')
    torch.save(_agrifm_state(source), path)
    model = MODELS.build(dict(
        type='S2TemporalSwin', **TINY,
        init_cfg=dict(type='AgriFM', checkpoint=path,
                      patch_kernel_policy='fold')))
    model.init_weights()
    _assert_backbone_equal(source, model)
    assert model.patch_emd.proj.weight.shape == (8, 10, 2, 4, 4)


def test_loader_finds_encoder_inside_a_model(tmp_path, source):
    path = str(tmp_path / 'AgriFM.pth')
    torch.save(_agrifm_state(source), path)
    wrapper = torch.nn.ModuleDict(dict(s2=_encoder(seed=2),
                                       head=torch.nn.Linear(2, 2)))
    load_agrifm_weights(wrapper, path)
    _assert_backbone_equal(source, wrapper['s2'])


def test_map_handles_our_layout_and_drops_buffers(source):
    state = OrderedDict(source.state_dict())
    state['backbone.layers.0.blocks.0.attn.relative_position_index'] = \
        torch.zeros(18, 18, dtype=torch.long)
    mapped, dropped = map_agrifm_state_dict(state)
    assert list(mapped) == list(source.state_dict())
    assert len(dropped['buffers']) == 1


def _run_converter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, CONVERTER, *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True)


@pytest.mark.slow
def test_converter_round_trip(tmp_path, source):
    src = str(tmp_path / 'AgriFM.pth')
    torch.save(dict(state_dict=OrderedDict(
        (f'module.{k}', v) for k, v in _agrifm_state(source).items())), src)
    inspected = _run_converter(src, '--inspect')
    assert 'encoder.HLSL30_patch_emd' in inspected.stdout
    assert 'dropped (other_sensors): 4' in inspected.stdout
    assert not osp.exists(str(tmp_path / 'out.pth'))

    dst = str(tmp_path / 'out.pth')
    _run_converter(src, dst, '--patch-kernel-policy', 'fold')
    saved = torch.load(dst, weights_only=True)['state_dict']
    assert set(saved) == set(source.state_dict())
    by_loader = _encoder(seed=3)
    load_agrifm_weights(by_loader, src, patch_kernel_policy='fold')
    by_converter = _encoder(seed=4)
    report = load_agrifm_weights(by_converter, dst)
    assert report['missing'] == [] and report['patch_embed'] == 'loaded'
    for key, value in by_loader.state_dict().items():
        torch.testing.assert_close(by_converter.state_dict()[key], value)

    kept = str(tmp_path / 'kept.pth')
    _run_converter(src, kept)  # default: keep the stored 4-tap kernel
    report = load_agrifm_weights(_encoder(seed=5), kept)
    assert report['patch_embed'] == 'reinit'
    _assert_backbone_equal(source, _loaded(kept))


def _loaded(path: str) -> S2TemporalSwin:
    model = _encoder(seed=6)
    load_agrifm_weights(model, path)
    return model


def test_converter_rejects_a_file_that_is_not_a_checkpoint(tmp_path,
                                                           capsys):
    import importlib.util
    bad = tmp_path / 'AgriFM.pth'
    bad.write_text('<html>not found</html>')
    spec = importlib.util.spec_from_file_location('agrifm_tool', CONVERTER)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([str(bad), '--inspect']) == 2
    err = capsys.readouterr().err
    assert f'{bad}: not a PyTorch checkpoint' in err
    assert 'Traceback' not in err
