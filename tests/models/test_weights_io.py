"""The one checkpoint reader (h2crop.models.weights.io) and its trust rules."""
import numpy as np
import pytest
import torch

from h2crop.models.weights.io import (
    TRUSTED,
    WEIGHTS_ONLY,
    CheckpointReadError,
    load_checkpoint_file,
    read_state_dict,
)


def _training_checkpoint(path):
    # what mmengine writes: tensors plus Python objects (numpy RNG state)
    torch.save({'state_dict': {'module.w': torch.ones(2)},
                'meta': {'rng': np.random.RandomState(0).get_state()}}, path)


def test_weights_only_refuses_objects_and_says_how_to_vouch(tmp_path):
    path = tmp_path / 'run.pth'
    _training_checkpoint(path)
    with pytest.raises(CheckpointReadError, match="trust='trusted'"):
        read_state_dict(str(path))
    state = read_state_dict(str(path), trust=TRUSTED)
    assert list(state) == ['w'] and torch.equal(state['w'], torch.ones(2))


def test_plain_state_dict_reads_weights_only(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save({'state_dict': {'a.b': torch.zeros(3)}}, path)
    assert list(read_state_dict(str(path), trust=WEIGHTS_ONLY)) == ['a.b']


def test_npz_is_read_without_pickle(tmp_path):
    path = tmp_path / 'w.npz'
    np.savez(path, x=np.arange(4, dtype=np.float32))
    state = read_state_dict(str(path))
    assert torch.equal(state['x'], torch.arange(4, dtype=torch.float32))


def test_garbage_missing_and_bad_trust(tmp_path):
    bad = tmp_path / 'bad.pth'
    bad.write_text('<html>not found</html>')
    for trust in (WEIGHTS_ONLY, TRUSTED):
        with pytest.raises(CheckpointReadError,
                           match='bad.pth: not a PyTorch checkpoint'):
            load_checkpoint_file(str(bad), trust=trust)
    with pytest.raises(FileNotFoundError, match='place it here'):
        load_checkpoint_file(str(tmp_path / 'none.pth'),
                             missing_hint='place it here')
    with pytest.raises(ValueError, match='trust must be one of'):
        load_checkpoint_file(str(bad), trust='yes')
