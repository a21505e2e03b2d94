"""Every command-line option of the user-facing tools is explained."""
import argparse
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = ['tools/demo.py', 'tools/train.py', 'tools/test.py',
         'tools/model_converters/agrifm2h2crop.py',
         'tools/misc/make_synthetic_dataset.py',
         'tools/analysis_tools/plot_curves.py']


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parser_of(rel: str, monkeypatch) -> argparse.ArgumentParser:
    spec = importlib.util.spec_from_file_location(
        'tool_' + osp.basename(rel)[:-3], osp.join(REPO, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    with pytest.raises(_Captured) as caught:
        module.parse_args(['x'])
    return caught.value.parser


@pytest.mark.parametrize('rel', TOOLS)
def test_every_option_has_help(rel, monkeypatch):
    parser = _parser_of(rel, monkeypatch)
    missing = [a.option_strings or a.dest for a in parser._actions
               if a.help is None or (a.help != argparse.SUPPRESS and
                                     len(a.help.strip()) < 8)]
    assert missing == [], f'{rel}: options without help: {missing}'


@pytest.mark.parametrize('script,nargs', [('dist_train.sh', 2),
                                          ('dist_test.sh', 3)])
def test_dist_scripts_print_usage(script, nargs):
    import subprocess
    path = osp.join(REPO, 'tools', script)
    bad = subprocess.run(['bash', path, 'cfg.py'], capture_output=True,
                         text=True, timeout=30)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f'usage: bash tools/{script} CONFIG')
    good = subprocess.run(['bash', path, '--help'], capture_output=True,
                          text=True, timeout=30)
    assert good.returncode == 0 and '--cfg-options' in good.stdout
    not_a_count = ['a'] * (nargs - 1) + ['four']
    assert subprocess.run(['bash', path, *not_a_count], capture_output=True,
                          timeout=30).returncode == 2
