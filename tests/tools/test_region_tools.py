"""tools/dataset_converters/rasters2h2crop.py: the command line."""
import importlib.util
import json
import os.path as osp

from h2crop.datasets.converters.convert import REPORT_FILE
from h2crop.datasets.converters.synthetic_region import make_synthetic_region

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rasters2h2crop_cli(tmp_path, capsys):
    tool = _load('tools/dataset_converters/rasters2h2crop.py')
    raw = make_synthetic_region(str(tmp_path / 'raw'), width=72, height=48,
                                parcel_size=120.0, seed=4)
    out = str(tmp_path / 'out')
    argv = [out, '--s2', *raw['s2'], '--enmap', raw['enmap'],
            '--parcels', raw['parcels'], '--code-column', 'crop_code',
            '--code-map', raw['code_map'], '--taxonomy', raw['taxonomy'],
            '--tile-size', '24', '--split-block', '1', '--workers', '2']
    assert tool.main(argv) == 0
    assert '6 of 6 tiles written' in capsys.readouterr().out
    with open(osp.join(out, REPORT_FILE)) as f:
        report = json.load(f)
    assert report['workers'] == 2 and report['parcels_prior'] == 0
    assert sorted(report['splits'].values()) == [1, 1, 4]
    # refused without --overwrite, and a wrong column is named
    assert tool.main(argv) == 2
    assert '--overwrite' in capsys.readouterr().err
    bad = argv[:argv.index('--code-column') + 1] + ['nope'] + \
        argv[argv.index('--code-column') + 2:] + ['--overwrite']
    assert tool.main(bad) == 2
    err = capsys.readouterr().err
    assert "no column 'nope'" in err and 'crop_code' in err
