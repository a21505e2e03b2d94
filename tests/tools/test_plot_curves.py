"""plot_curves reads a work dir's scalar records and draws them."""
import importlib.util
import json
import os
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'plot_curves.py')


def _tool():
    spec = importlib.util.spec_from_file_location('plot_curves', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_run(work, stamp, records):
    folder = osp.join(work, stamp, 'vis_data')
    os.makedirs(folder)
    with open(osp.join(folder, 'scalars.json'), 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def test_joins_resumed_runs_and_writes_the_figure(tmp_path, capsys):
    work = str(tmp_path)
    # the LoggerHook's layout: training records with iter, validation with
    # step = epoch; the resumed run repeats iteration 4 with a new value
    _write_run(work, '20250101_000000', [
        dict(lr=1e-3, loss=2.0, epoch=1, iter=2, step=2),
        dict(lr=1e-3, loss=1.5, epoch=1, iter=4, step=4),
        {'mFscore': 10.0, 'level1/mIoU': 5.0, 'step': 1}])
    _write_run(work, '20250101_010000', [
        dict(lr=5e-4, loss=1.2, epoch=2, iter=4, step=4),
        dict(lr=5e-4, loss=1.0, epoch=2, iter=6, step=6),
        {'mFscore': 20.0, 'level1/mIoU': 8.0, 'step': 2}])
    tool = _tool()
    records = tool.read_scalars(work)
    assert tool.curve(records, 'loss') == ('iteration', [2.0, 4.0, 6.0],
                                           [2.0, 1.2, 1.0])
    assert tool.curve(records, 'mFscore') == ('epoch', [1.0, 2.0],
                                              [10.0, 20.0])
    assert tool.main([work, '--list']) == 0
    assert capsys.readouterr().out.split() == [
        'lr', 'loss', 'mFscore', 'level1/mIoU']
    assert tool.main([work]) == 0
    out = osp.join(work, 'curves.png')
    assert osp.getsize(out) > 1000
    assert tool.main([work]) == 2  # never overwritten without asking
    assert 'exists' in capsys.readouterr().err
    assert tool.main([work, '--keys', 'level1/mIoU', '--out',
                      str(tmp_path / 'x.pdf')]) == 0
    assert tool.main([work, '--keys', 'nope']) == 2


def test_missing_records_are_reported(tmp_path, capsys):
    assert _tool().main([str(tmp_path)]) == 2
    assert 'scalars.json' in capsys.readouterr().err
