"""tools/test.py evaluates either decoder."""
import importlib.util
import os.path as osp

import pytest

from h2crop.engine.runner_builder import build_runner_from_args

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _test_tool():
    spec = importlib.util.spec_from_file_location(
        'h2crop_tool_test', osp.join(REPO, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('decode', ['argmax', 'consistent'])
def test_test_tool_with_decoder(tiny_model_files, tmp_path, decode):
    cfg, ckpt, _ = tiny_model_files
    args = _test_tool().parse_args([
        cfg, ckpt, '--work-dir', str(tmp_path), '--cfg-options',
        f'model.test_cfg.decode={decode}', 'test_dataloader.batch_size=4'])
    metrics = build_runner_from_args(args, mode='test').test()
    if decode == 'consistent':
        assert metrics['hierarchy_consistency'] == pytest.approx(100.0)
    else:  # random weights contradict the taxonomy somewhere
        assert metrics['hierarchy_consistency'] < 100.0
