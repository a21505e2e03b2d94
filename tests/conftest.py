"""Shared pytest fixtures.

``shared_reference`` gives the folder ``../shared/reference`` (beside the
checkout) that holds the taxonomy, band statistics and reference vectors. In
a user's clone it is absent and tests using it skip with the reason; under
``CI=true`` its absence fails the test instead.
"""
import os
import os.path as osp

import pytest

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_REFERENCE = os.environ.get(
    'H2CROP_SHARED_REFERENCE',
    osp.join(osp.dirname(REPO_ROOT), 'shared', 'reference'))


def _in_ci() -> bool:
    return os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


def require_shared(*relpath: str) -> str:
    """Return a path under the shared reference folder, or skip / fail.

    Args:
        *relpath: Path components below ``shared/reference``.
    """
    path = osp.join(SHARED_REFERENCE, *relpath)
    if not osp.exists(path):
        msg = (f'{path} is absent: the shared reference data lives beside '
               'the development checkout, not in a user clone')
        if _in_ci():
            pytest.fail(msg + ' (CI=true requires it)')
        pytest.skip(msg)
    return path


@pytest.fixture
def shared_reference() -> str:
    """The ``shared/reference`` folder (skips, or fails under CI=true)."""
    return require_shared()


@pytest.fixture
def taxonomy_csv() -> str:
    """Path of the real ``cascade_labels.csv``."""
    return require_shared('cascade_labels.csv')


def save_like_training(model, path: str, **meta) -> str:
    """Save ``model`` (from ``init_model``) as h2crop's training does.

    The meta holds what :class:`~h2crop.engine.H2CropRunner` writes: the
    config text (mmengine) and the experiment record of the model's
    resolved config; ``meta`` entries are added.
    """
    import torch

    from h2crop.engine.checkpoint_experiment import (
        EXPERIMENT_META_KEY,
        experiment_record,
    )
    meta = dict(epoch=1, cfg=model.cfg.pretty_text, **meta)
    meta[EXPERIMENT_META_KEY] = experiment_record(model.cfg)
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return path


@pytest.fixture(scope='session')
def tiny_dataset_96(tmp_path_factory) -> str:
    """A session-wide synthetic dataset of 96 px tiles (12 tiles)."""
    from ._synthetic import make_tiny_dataset
    return make_tiny_dataset(tmp_path_factory.mktemp('tiny96'),
                             num_samples=12, size=96, seed=3)


@pytest.fixture(scope='session')
def tiny_model_files(tiny_dataset_96, tmp_path_factory):
    """``(config path, checkpoint path, data root)`` of a tiny S2+H+P model
    (the demo config shrunk), for the inference and mapping tests.

    The weights are a random initialisation saved as a training checkpoint
    would be (``state_dict`` + ``meta`` with the config text and the
    experiment record, see :func:`save_like_training`).
    """
    import torch

    from h2crop.apis import init_model

    from .engine.tiny_cfg import tiny_runner_cfg
    folder = tmp_path_factory.mktemp('tiny_model')
    cfg = tiny_runner_cfg(tiny_dataset_96, str(folder))
    cfg_path = osp.join(str(folder), 'tiny.py')
    cfg.dump(cfg_path)
    torch.manual_seed(0)
    model = init_model(cfg_path)
    ckpt = osp.join(str(folder), 'tiny.pth')
    save_like_training(model, ckpt)
    return cfg_path, ckpt, tiny_dataset_96
