"""The command line of tools/dataset_converters/s2_monthly.py."""
import datetime as dt
import importlib.util
import os.path as osp
import sys

import numpy as np
import pytest
import rasterio

from h2crop.products import composite_path
from h2crop.products import synthetic_s2 as fx

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.filterwarnings(
    'ignore::PendingDeprecationWarning:odc.*')


@pytest.fixture(scope='module')
def tool():
    path = osp.join(REPO, 'tools', 'dataset_converters', 's2_monthly.py')
    spec = importlib.util.spec_from_file_location('s2_monthly_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_option_states_its_default(tool):
    parser = tool.build_parser()
    for action in parser._actions:
        if not action.option_strings or action.dest == 'help':
            continue
        assert action.help and ('default' in action.help
                                or 'required' in action.help), \
            action.option_strings


def test_run_writes_composites_and_errors_are_one_line(tool, tmp_path,
                                                       capsys):
    rng = np.random.default_rng(0)
    when = dt.datetime(2023, 6, 5, 10, 36, 29, tzinfo=dt.timezone.utc)
    acq = fx.make_acquisition(rng, when)
    safe = fx.write_safe(str(tmp_path / 'in'), acq)
    out = str(tmp_path / 'out')
    args = [out, '--inputs', safe, '--year', '2023', '--months', '6', '7',
            '--resampling', 'nearest', '--no-progress', '--fill-gaps']
    assert tool.main(args) == 0
    printed = capsys.readouterr().out
    assert '2023-06: 1 product(s)' in printed
    assert '2 composite(s) from 1 product(s)' in printed
    with rasterio.open(composite_path(out, 2023, 6)) as ds:
        june = ds.read()
    with rasterio.open(composite_path(out, 2023, 7, 'filled')) as ds:
        july = ds.read()
    np.testing.assert_array_equal(july, june)  # the only month with data
    # an existing output: refused, one line naming the file and the flag
    assert tool.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and '--overwrite' in err
    assert '\n' not in err
    # a Level-1C product: refused naming it
    l1c = fx.write_safe(str(tmp_path / 'l1c'), acq, level='L1C')
    assert tool.main([str(tmp_path / 'o2'), '--inputs', l1c, '--year',
                      '2023']) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and 'MSIL1C' in err
    # nothing given
    assert tool.main([str(tmp_path / 'o3'), '--year', '2023']) == 2
    assert 'no input' in capsys.readouterr().err


def test_search_without_pystac_client_is_refused_clearly(tool, tmp_path,
                                                         capsys,
                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, 'pystac_client', None)
    args = [str(tmp_path / 'o'), '--year', '2023', '--search',
            'https://earth-search.aws.element84.com/v1']
    assert tool.main(args) == 2
    assert '--like RASTER or --crs and --bounds' in capsys.readouterr().err
    args += ['--crs', 'EPSG:32632', '--bounds', '600000', '5000000',
             '601000', '5001000']
    assert tool.main(args) == 2
    err = capsys.readouterr().err
    assert 'pystac-client' in err and 'h2crop[online]' in err
