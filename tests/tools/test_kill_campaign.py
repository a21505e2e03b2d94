"""A short kill-and-resume campaign ends with the uninterrupted weights."""
import importlib.util
import json
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'misc', 'kill_resume_campaign.py')


def _load():
    spec = importlib.util.spec_from_file_location('kill_campaign_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_three_kills_resume_to_the_uninterrupted_weights(tmp_path, capsys):
    work = str(tmp_path / 'campaign')
    tool = _load()
    assert tool.main(['--kills', '3', '--epochs', '2', '--seed', '1',
                      '--work-dir', work]) == 0
    with open(osp.join(work, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['kills'] == 3 and summary['failures'] == []
    assert summary['finished_runs'] and all(
        r['equal'] for r in summary['finished_runs'])
    assert 'checkpoint write' in summary['phases']  # seed 1 hits one
    # the campaign refuses to replace its own earlier output
    with pytest.raises(SystemExit, match='--overwrite'):
        tool.main(['--kills', '1', '--work-dir', work])


def test_weight_comparison_is_bitwise():
    import torch
    tool = _load()
    a = {'w': torch.ones(3), 'n': torch.tensor(2)}
    assert tool.compare(dict(a), a) == (True, 0.0)
    equal, worst = tool.compare({'w': torch.ones(3) + 1e-7,
                                 'n': torch.tensor(2)}, a)
    assert not equal and 0 < worst < 1e-6
    assert tool.compare({'w': torch.ones(3)}, a)[0] is False
