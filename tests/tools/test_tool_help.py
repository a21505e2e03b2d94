"""Every command-line option of every tool is explained, with its default."""
import argparse
import glob
import os.path as osp
import runpy
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = sorted(osp.relpath(p, REPO) for p in
               glob.glob(osp.join(REPO, 'tools', '*.py')) +
               glob.glob(osp.join(REPO, 'tools', '*', '*.py')))


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parser_of(rel: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser a tool builds, caught when it parses its arguments."""
    def capture(self, *args, **kwargs):
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args',
                        capture)
    monkeypatch.setattr(sys, 'argv', [osp.join(REPO, rel)])
    with pytest.raises(_Captured) as caught:
        runpy.run_path(osp.join(REPO, rel), run_name='__main__')
    return caught.value.parser


def _states_default(action: argparse.Action, text: str) -> bool:
    """Whether ``text`` (the expanded help) states the action's default."""
    default = action.default
    if default is None or default is False or default == argparse.SUPPRESS:
        return True
    if 'default' not in text.lower():
        return False
    values = default if isinstance(default, (list, tuple)) else [default]
    values = values[:1] + values[-1:]  # a range may be stated as 1..12
    return all(str(v) in text or osp.basename(str(v)) in text
               for v in values)


def test_every_tool_is_covered():
    assert len(TOOLS) >= 19
    assert {'tools/train.py', 'tools/demo_region.py',
            'tools/misc/check_dataset.py',
            'tools/dataset_converters/rasters2h2crop.py'} <= set(TOOLS)


@pytest.mark.parametrize('rel', TOOLS)
def test_every_option_has_help_stating_its_default(rel, monkeypatch):
    parser = _parser_of(rel, monkeypatch)
    formatter = parser._get_formatter()
    missing, silent = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or \
                action.help == argparse.SUPPRESS:
            continue
        name = action.option_strings or action.dest
        if action.help is None or len(action.help.strip()) < 8:
            missing.append(name)
            continue
        if not _states_default(action, formatter._expand_help(action)):
            silent.append((name, action.default))
    assert missing == [], f'{rel}: options without help: {missing}'
    assert silent == [], f'{rel}: help does not state the default: {silent}'


@pytest.mark.parametrize('script,nargs', [('dist_train.sh', 2),
                                          ('dist_test.sh', 3),
                                          ('dist_run.sh', 2)])
def test_dist_scripts_print_usage(script, nargs):
    path = osp.join(REPO, 'tools', script)
    for argv in ([], ['cfg.py']):
        bad = subprocess.run(['bash', path, *argv], capture_output=True,
                             text=True, timeout=30)
        assert bad.returncode == 2
        assert bad.stderr.startswith(f'usage: bash tools/{script} ')
        assert 'unbound variable' not in bad.stderr
    good = subprocess.run(['bash', path, '--help'], capture_output=True,
                          text=True, timeout=30)
    assert good.returncode == 0 and good.stdout.startswith(
        f'usage: bash tools/{script} ')
    not_a_count = ['a'] * (nargs - 1) + ['four']
    if script == 'dist_run.sh':
        not_a_count = ['four', 'train.py']
    assert subprocess.run(['bash', path, *not_a_count], capture_output=True,
                          timeout=30).returncode == 2
