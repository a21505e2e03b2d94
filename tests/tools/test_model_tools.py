"""Tests of the model analysis helpers and CLIs.

Covers get_flops and benchmark_model.
"""
import importlib.util
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from torch import nn

from h2crop.constants import ENMAP, ENMAP_BANDS, LEVELS, PRIOR, S2, S2_BANDS
from h2crop.taxonomy import load_taxonomy
from h2crop.utils.model_analysis import (
    build_model_from_cfg,
    count_parameters,
    dummy_data_samples,
    dummy_inputs,
    forward_flops,
    load_model_config,
)

from ..conftest import require_shared

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GET_FLOPS = osp.join(REPO, 'tools', 'analysis_tools', 'get_flops.py')
BENCH = osp.join(REPO, 'tools', 'analysis_tools', 'benchmark_model.py')
DEMO = osp.join(REPO, 'configs', 'demo', 'h2crop_demo_s2_h_p.py')
#: Small tile for the demo model (its EnMAP encoder follows tile_size).
SMALL_TILE = 48
SMALL_OPTS = [f'tile_size={SMALL_TILE}']

#: The paper system's parameter counts without dead parameters, as the
#: specification states them (figures independent of this code): the
#: original's 216.6 M / 223.1 M minus its 40.4 M dead parameters.
PAPER_PARAMS = {
    'hyper_benefits/crops_S2_jun.py': '115.0 M',
    'hyper_benefits/crops_S2_H_P_jun.py': '176.2 M',
    'temporal_exp/crops_S2_H_P_Oct.py': '182.7 M',
}
#: Buffers in the reference key list (not parameters).
_KEY_LIST_BUFFERS = ('relative_position_index', )


def _load(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    # configs name data/... relative to the repository root
    monkeypatch.chdir(REPO)


# ---------------------------------------------------------------- library
def _reference_s2_encoder_shapes() -> dict:
    """Parameter shapes of the original's full S2 encoder (key list)."""
    with open(require_shared('s2_encoder_full_keys.json')) as f:
        keys = json.load(f)
    return {k: tuple(v) for k, v in keys.items()
            if not k.endswith(_KEY_LIST_BUFFERS)}


@pytest.mark.parametrize('rel', sorted(PAPER_PARAMS))
def test_paper_configs_parameter_counts_on_meta(rel):
    cfg = load_model_config(osp.join(REPO, 'configs', rel))
    model = build_model_from_cfg(cfg, 'meta')
    assert all(p.is_meta for p in model.parameters())
    counts = count_parameters(model)
    assert f'{counts["total"] / 1e6:.1f} M' == PAPER_PARAMS[rel]
    assert counts['total'] == counts['trainable']
    assert sum(counts['per_module'].values()) == counts['total']
    # the S2 encoder holds exactly the original's parameters, name by name
    expected = _reference_s2_encoder_shapes()
    ours = {name: tuple(p.shape)
            for name, p in model.s2_encoder.named_parameters()}
    assert ours == expected
    assert counts['per_module']['s2_encoder'] == sum(
        math.prod(shape) for shape in expected.values())


def test_load_model_config_taxonomy_fallback(tmp_path):
    missing = tmp_path / 'nowhere.csv'
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        f"model = dict(type='H2CropSegmentor', taxonomy={str(missing)!r})\n")
    assert load_model_config(str(cfg_file)).model.taxonomy is None
    present = tmp_path / 'tax.csv'
    present.write_text('x\n')
    cfg = load_model_config(str(cfg_file),
                            {'model.taxonomy': str(present)})
    assert cfg.model.taxonomy == str(present)  # kept when it exists


def test_dummy_inputs_and_samples_follow_the_config():
    cfg = dict(modalities=(S2, ENMAP, PRIOR), levels=('level2', 'level4'),
               num_frames=8, taxonomy=None)
    inputs = dummy_inputs(cfg, tile_size=24, batch=2)
    assert inputs[S2].shape == (2, 8, S2_BANDS, 24, 24)
    assert inputs[S2].dtype == torch.float32
    assert inputs[ENMAP].shape == (2, ENMAP_BANDS, 8, 8)
    assert inputs[PRIOR].shape == (2, 2, 24, 24)
    assert inputs[PRIOR].dtype == torch.int64
    n_cls = load_taxonomy(None).num_classes
    for row, level in enumerate(cfg['levels']):
        ids = inputs[PRIOR][:, row]
        assert ids.min() >= 0 and ids.max() == n_cls[LEVELS.index(level)] - 1
    samples = dummy_data_samples(cfg, tile_size=24, batch=2)
    assert len(samples) == 2
    assert samples[0].gt_sem_seg.data.shape == (2, 24, 24)
    assert samples[0].gt_sem_seg.data.dtype == torch.int64
    meta = dummy_inputs(cfg, tile_size=24, device='meta')
    assert all(t.is_meta for t in meta.values())

    s2_only = dict(cfg, modalities=(S2, ))
    assert set(dummy_inputs(s2_only, tile_size=20)) == {S2}
    with pytest.raises(ValueError, match='multiple of 3'):
        dummy_inputs(cfg, tile_size=20)


class _TwoLayers(nn.Module):
    """forward(inputs, mode) like the segmentor; known multiply-adds."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 4)
        self.conv = nn.Conv2d(3, 5, 3, padding=1, bias=False)
        self.idle = nn.Linear(2, 2)

    def forward(self, inputs, mode='tensor'):
        return self.fc(inputs['a']), self.conv(inputs['b'])


def test_forward_flops_counts_two_per_multiply_add_per_module():
    model = _TwoLayers()
    inputs = dict(a=torch.randn(7, 6), b=torch.randn(1, 3, 8, 8))
    total, per = forward_flops(model, inputs)
    fc = 2 * 7 * 6 * 4
    conv = 2 * (8 * 8 * 5) * (3 * 3 * 3)
    assert per == {'fc': fc, 'conv': conv, 'idle': 0}
    assert total == fc + conv
    assert model.training  # mode restored
    counts = count_parameters(model)
    assert counts['per_module'] == {'fc': 28, 'conv': 135, 'idle': 6}
    assert counts['total'] == counts['trainable'] == 169


def test_meta_and_cpu_flops_agree_without_prior():
    cfg = load_model_config(DEMO, {
        'modalities': [S2, ENMAP],
        'tile_size': SMALL_TILE
    })
    meta_total, meta_per = forward_flops(
        build_model_from_cfg(cfg, 'meta'),
        dummy_inputs(cfg.model, SMALL_TILE, device='meta'))
    cpu_total, cpu_per = forward_flops(
        build_model_from_cfg(cfg, 'cpu'), dummy_inputs(cfg.model, SMALL_TILE))
    assert meta_total == cpu_total > 0
    assert meta_per == cpu_per
    assert sum(cpu_per.values()) == cpu_total
    assert cpu_per['enmap_encoder'] > 0 and cpu_per['s2_encoder'] > 0


# ---------------------------------------------------------------- CLIs
def test_get_flops_prints_parameters_and_flops(capsys):
    assert _load(GET_FLOPS).main([
        DEMO, '--tile-size', str(SMALL_TILE)
    ]) == 0
    out = capsys.readouterr().out
    cfg = load_model_config(DEMO, {'tile_size': SMALL_TILE})
    model = build_model_from_cfg(cfg, 'meta')
    total = count_parameters(model)['total']
    assert f'Parameters: {total / 1e6:.1f} M' in out
    flops, per = forward_flops(build_model_from_cfg(cfg, 'cpu'),
                               dummy_inputs(cfg.model, SMALL_TILE))
    assert f'at {SMALL_TILE}x{SMALL_TILE} px' in out
    assert f'{flops / 1e9:.1f} GFLOPs' in out
    assert '2 x multiply-adds' in out
    for name in ('s2_encoder', 'enmap_encoder', 'neck', 'head'):
        lines = [ln for ln in out.splitlines() if ln.split()[:1] == [name]]
        assert len(lines) == 2  # one parameter line, one FLOP line
        assert lines[0].endswith(' M')
        assert f'{per[name] / 1e9:.1f} GFLOPs' in lines[1]


def test_get_flops_paper_config_parameters_only(capsys):
    assert _load(GET_FLOPS).main([
        osp.join(REPO, 'configs', 'hyper_benefits', 'crops_S2_H_P_jun.py'),
        '--no-flops'
    ]) == 0
    out = capsys.readouterr().out
    assert 'Parameters: 176.2 M' in out
    assert 'GFLOPs' not in out


@pytest.mark.slow
def test_benchmark_model_cli_one_iteration_on_cpu():
    proc = subprocess.run([
        sys.executable, BENCH, DEMO, '--tile-size', str(SMALL_TILE),
        '--iters', '1', '--warmup', '0', '--device', 'cpu', '--cfg-options',
        *SMALL_OPTS
    ], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert 'precision: float32' in out
    for label in ('forward (eval, no_grad): ',
                  'forward+backward (train, sum of losses): '):
        line = next(ln for ln in out.splitlines() if ln.startswith(label))
        assert float(line[len(label):].split()[0]) > 0  # ms/tile
        assert 'peak memory' in line and 'MiB' in line
    assert 'got no gradient' not in out  # every parameter is trained


def test_benchmark_model_cuda_absent_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(SystemExit, match='CUDA is not available'):
        _load(BENCH).main([DEMO, '--device', 'cuda'])
