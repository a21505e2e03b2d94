"""Tests of the original-layout converter (h2crop.models.weights.original)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner import load_checkpoint

from h2crop.constants import ENMAP, PRIOR, S2
from h2crop.models import (
    convert_original_state_dict,
    load_original_checkpoint,
    to_original_state_dict,
)

from .tiny_dualstream import build_tiny, make_batch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(REPO, 'tools', 'model_converters', 'original2h2crop.py')
MODS = (S2, ENMAP, PRIOR)


def _original_checkpoint(model, dead=True):
    """The model's weights in the original layout, with its extras."""
    state = to_original_state_dict(model.state_dict())
    assert all(k.startswith(('encoders.encoders.', 'neck.', 'heads.'))
               for k in state)
    if dead:  # unused timm ViT parameters and Swin index buffers
        en = 'encoders.encoders.EnMAP.'
        state[en + 's_vit.pos_embed'] = torch.zeros(1, 50177, 16)
        state[en + 's_vit.cls_token'] = torch.zeros(1, 1, 16)
        state[en + 's_vit.patch_embed.proj.weight'] = torch.zeros(
            16, 218, 1, 1)
        state[en + 'p_vit.norm.bias'] = torch.zeros(16)
        state['encoders.encoders.S2.backbone.layers.0.blocks.0.attn.'
              'relative_position_index'] = torch.zeros(4, 4, dtype=torch.long)
    return {'module.' + k: v for k, v in state.items()}


def _outputs(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(inputs, mode='tensor')


@pytest.mark.parametrize('dead', [True, False])
def test_round_trip_identical_outputs(tmp_path, dead):
    torch.manual_seed(0)
    source = build_tiny(MODS)
    # non-trivial BN statistics so that buffers are checked too
    inputs, samples = make_batch(MODS, source.levels, 6)
    source.train()(inputs, samples, mode='loss')
    src = tmp_path / 'original.pth'
    torch.save(dict(state_dict=_original_checkpoint(source, dead),
                    meta=dict(epoch=3)), src)
    dst = tmp_path / 'h2crop.pth'
    run = subprocess.run([sys.executable, CLI, str(src), str(dst)],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    assert f'dropped {5 if dead else 0} unused keys' in run.stdout
    torch.manual_seed(1)
    target = build_tiny(MODS)
    load_checkpoint(target, str(dst), strict=True)
    want, got = _outputs(source, inputs), _outputs(target, inputs)
    for level in want:
        assert torch.equal(want[level], got[level])
    # the in-process loader gives the same model
    other = build_tiny(MODS)
    info = load_original_checkpoint(other, str(src))
    assert info['loaded'] == len(source.state_dict())
    for level, value in _outputs(other, inputs).items():
        assert torch.equal(want[level], value)


def test_unknown_and_misfit_keys_fail_clearly():
    model = build_tiny(MODS)
    state = _original_checkpoint(model, dead=False)
    state['neck.in_conv.0.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='neck.in_conv.0.weight'):
        convert_original_state_dict(state)
    # a checkpoint with EnMAP does not fit an S2-only model
    with pytest.raises(ValueError, match='unexpected'):
        load_original_checkpoint(build_tiny((S2, )),
                                 _original_checkpoint(model, dead=False))
    with pytest.raises(ValueError, match='shape of'):
        load_original_checkpoint(build_tiny(MODS, num_frames=10),
                                 _original_checkpoint(model, dead=False))


def test_reference_key_layout_round_trips(shared_reference):
    """Our names map onto exactly the original's key list (minus buffers)."""
    with open(osp.join(shared_reference, 'dualstream',
                       'h2crop_tiny_keys.json')) as f:
        keys = json.load(f)
    fake = {k: torch.zeros(shape) for k, shape in keys.items()}
    ours, dropped = convert_original_state_dict(fake)
    assert all(k.endswith('relative_position_index') for k in dropped)
    back = to_original_state_dict(ours)
    assert set(back) == set(keys) - set(dropped)
