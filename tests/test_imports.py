"""Every module imports without compiled mmcv ops; registries are scoped."""
import importlib
import subprocess
import sys

FORBIDDEN = ('mmcv.ops', 'mmseg.models', 'mmseg.datasets', 'mmseg.utils',
             'mmseg.apis', 'mmseg.visualization')


def test_every_module_imports_without_compiled_ops():
    code = (
        'import importlib, pkgutil, sys, h2crop\n'
        'names = [m.name for m in pkgutil.walk_packages(h2crop.__path__, '
        '"h2crop.")]\n'
        'for n in names: importlib.import_module(n)\n'
        'from h2crop.utils import register_all_modules\n'
        'register_all_modules()\n'
        f'bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\n'
        'print(len(names)); assert not bad, bad\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert int(proc.stdout.split()[-1]) > 30


def test_registries_are_children_of_mmengine_roots():
    from mmengine import registry as mm

    from h2crop import registry as ours
    for name in ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS',
                 'RUNNERS', 'WEIGHT_INITIALIZERS', 'OPTIM_WRAPPERS'):
        child = getattr(ours, name)
        assert child.scope == 'h2crop'
        assert child.parent is getattr(mm, name)


def test_registered_names_resolve():
    from h2crop.registry import (
        DATASETS,
        HOOKS,
        METRICS,
        MODELS,
        OPTIM_WRAPPERS,
        RUNNERS,
        TRANSFORMS,
        WEIGHT_INITIALIZERS,
    )
    from h2crop.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    expected = {
        MODELS: ('H2CropSegmentor', 'S2TemporalSwin',
                 'EnMAPSpectralSpatialEncoder', 'FusionDecoder',
                 'CascadeHeads', 'H2CropDataPreprocessor'),
        DATASETS: ('H2CropDataset', ),
        TRANSFORMS: ('LoadH2CropH5', 'H2CropRandomFlipRotate',
                     'PackH2CropInputs'),
        METRICS: ('HierarchicalSegMetric', ),
        HOOKS: ('H2CropCheckpointHook', 'PredictionWriterHook',
                'ProgressBarHook'),
        RUNNERS: ('H2CropRunner', ),
        OPTIM_WRAPPERS: ('AutocastOptimWrapper', ),
        WEIGHT_INITIALIZERS: ('AgriFM', ),
    }
    for registry, names in expected.items():
        for name in names:
            assert registry.get(name) is not None, (registry.name, name)
    assert importlib.import_module('h2crop').__version__
