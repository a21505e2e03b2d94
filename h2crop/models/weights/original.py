"""Key mapping between the original H2Crop checkpoints and this project.

The original implementation (flyakon/H2Crop) names the parts of its model
``encoders.encoders.S2.*`` (AgriFM's Video-Swin), ``encoders.encoders.EnMAP.
{s_vit,p_vit,out_post}.*`` (a timm ``VisionTransformer`` subclass per ViT),
``neck.*`` and ``heads.heads_dict.levelK.head.*``. Its ViTs also carry
parameters that never take part in the forward pass (timm's ``pos_embed``,
``cls_token``, ``patch_embed`` and final ``norm``), and its Swin stores
``relative_position_index`` buffers; both are accepted and dropped. Every
other key must match a rule below, otherwise conversion fails and lists the
keys it does not know.

Each rule is a pair of templates (original, ours) whose ``{name}``
placeholders match the same text on both sides, so the mapping is a
bijection and :func:`to_original_state_dict` inverts it exactly.
"""
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Pattern, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger

from .io import TRUSTED, WEIGHTS_ONLY, read_state_dict, unwrap_state_dict

StateDict = Dict[str, torch.Tensor]

_WB = r'weight|bias'
_PLACEHOLDERS: Dict[str, str] = {
    'i': r'\d+',
    'level': r'level[1-4]',
    'wb': _WB,
    'bn': r'weight|bias|running_mean|running_var|num_batches_tracked',
    'block': r'blocks\.\d+\.(?:norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|'
             r'mlp\.fc2)\.(?:weight|bias)',
    's2': r'patch_emd\.proj\.(?:weight|bias)'
          r'|backbone\.layers\.\d+\.blocks\.\d+\.(?:(?:norm1|norm2|attn\.qkv|'
          r'attn\.proj|mlp\.fc1|mlp\.fc2)\.(?:weight|bias)|attn\.'
          r'relative_position_bias_table)'
          r'|backbone\.layers\.\d+\.downsample\.(?:norm\.(?:weight|bias)|'
          r'reduction\.weight)'
          r'|backbone\.norm\.(?:weight|bias)',
}

_S2 = 'encoders.encoders.S2.'
_EN = 'encoders.encoders.EnMAP.'
#: (original template, h2crop template)
RULES: Tuple[Tuple[str, str], ...] = (
    (_S2 + '{s2}', 's2_encoder.{s2}'),
    (_EN + 's_vit.patch_emd.proj.{wb}',
     'enmap_encoder.spatial_vit.token_embed.{wb}'),
    (_EN + 's_vit.{block}', 'enmap_encoder.spatial_vit.{block}'),
    (_EN + 's_vit.out_conv.{wb}', 'enmap_encoder.spatial_vit.out_conv.{wb}'),
    (_EN + 'p_vit.{block}', 'enmap_encoder.spectral_vit.{block}'),
    (_EN + 'p_vit.out_post.{wb}', 'enmap_encoder.spectral_vit.grid_proj.{wb}'),
    (_EN + 'p_vit.out_conv.{wb}', 'enmap_encoder.spectral_vit.out_conv.{wb}'),
    (_EN + 'out_post.0.{wb}', 'enmap_encoder.fusion.conv1.{wb}'),
    (_EN + 'out_post.2.{wb}', 'enmap_encoder.fusion.conv2.{wb}'),
    ('neck.fusion_list.{i}.0.{wb}', 'neck.fuse_layers.{i}.0.conv.{wb}'),
    ('neck.fusion_list.{i}.1.{bn}', 'neck.fuse_layers.{i}.0.bn.{bn}'),
    ('neck.fusion_list.{i}.3.{wb}', 'neck.fuse_layers.{i}.1.{wb}'),
    ('neck.out_conv.0.{wb}', 'neck.out_layer.0.conv.{wb}'),
    ('neck.out_conv.1.{bn}', 'neck.out_layer.0.bn.{bn}'),
    ('neck.out_conv.3.{wb}', 'neck.out_layer.1.{wb}'),
    ('neck.hyper_embed_neck.models.0.{wb}', 'neck.enmap_embed.0.conv.{wb}'),
    ('neck.hyper_embed_neck.models.1.{bn}', 'neck.enmap_embed.0.bn.{bn}'),
    ('neck.hyper_embed_neck.models.3.{wb}', 'neck.enmap_embed.1.{wb}'),
    ('heads.heads_dict.{level}.head.0.{wb}', 'head.heads.{level}.hidden.{wb}'),
    ('heads.heads_dict.{level}.head.2.{wb}',
     'head.heads.{level}.conv_seg.{wb}'),
)

#: Original keys that are accepted and dropped: the ViTs' unused timm
#: parameters and the Swin's deterministic index buffers.
DROPPED_PATTERNS: Tuple[Pattern, ...] = (
    re.compile(re.escape(_EN) + r'[sp]_vit\.(?:pos_embed|cls_token|reg_token'
               r'|patch_embed\.proj\.(?:weight|bias)|norm\.(?:weight|bias)'
               r'|fc_norm\.(?:weight|bias)|head\.(?:weight|bias))$'),
    re.compile(re.escape(_S2) + r'backbone\.layers\.\d+\.blocks\.\d+\.attn\.'
               r'relative_position_index$'),
)


def _compile(template: str) -> Pattern:
    """Template with ``{name}`` placeholders -> anchored regex."""
    parts = re.split(r'\{(\w+)\}', template)
    regex = ''
    for idx, part in enumerate(parts):
        if idx % 2:
            regex += f'(?P<{part}>{_PLACEHOLDERS[part]})'
        else:
            regex += re.escape(part)
    return re.compile(regex + '$')


_FORWARD = [(_compile(orig), ours) for orig, ours in RULES]
_BACKWARD = [(_compile(ours), orig) for orig, ours in RULES]


def _translate(state: Mapping[str, torch.Tensor], rules, source: str,
               direction: str) -> Tuple[StateDict, List[str]]:
    out: StateDict = OrderedDict()
    dropped: List[str] = []
    unknown: List[str] = []
    for key, value in state.items():
        for pattern, target in rules:
            match = pattern.match(key)
            if match:
                out[target.format(**match.groupdict())] = value
                break
        else:
            if direction == 'forward' and any(
                    p.match(key) for p in DROPPED_PATTERNS):
                dropped.append(key)
            else:
                unknown.append(key)
    if unknown:
        shown = ', '.join(unknown[:20])
        more = f' (+{len(unknown) - 20} more)' if len(unknown) > 20 else ''
        layout = ('the original H2Crop layout (encoders.encoders.S2.*, '
                  'encoders.encoders.EnMAP.*, neck.*, heads.heads_dict.*)'
                  if direction == 'forward' else 'the h2crop layout')
        raise KeyError(f'{source}: {len(unknown)} keys are not part of '
                       f'{layout}: {shown}{more}')
    return out, dropped


def convert_original_state_dict(checkpoint: Mapping,
                                source: str = '<state dict>'
                                ) -> Tuple[StateDict, List[str]]:
    """Map an original H2Crop state dict to this project's names.

    Args:
        checkpoint: The original state dict, optionally wrapped in
            ``state_dict`` and / or prefixed ``module.``; values are tensors
            or numpy arrays.
        source: Name used in error messages.

    Returns:
        (state dict keyed like :class:`H2CropSegmentor`, dropped keys).

    Raises:
        KeyError: Some keys match neither a rule nor a dropped pattern.
    """
    state = unwrap_state_dict(checkpoint, source)
    return _translate(state, _FORWARD, source, 'forward')


def to_original_state_dict(state: Mapping[str, torch.Tensor],
                           source: str = '<state dict>') -> StateDict:
    """Inverse of :func:`convert_original_state_dict` (without dead keys)."""
    out, _ = _translate(unwrap_state_dict(state, source), _BACKWARD, source,
                        'backward')
    return out


def read_original_checkpoint(path: str,
                             allow_pickle: bool = False) -> StateDict:
    """Read an original checkpoint file (``.pth`` / ``.pt``, or ``.npz``).

    Args:
        path: Checkpoint path.
        allow_pickle: Read with full unpickling (trust level ``trusted``):
            full mmengine training checkpoints hold a message hub that
            ``weights_only`` refuses. Only for files you trust.

    Returns:
        The unwrapped state dict (original key layout).
    """
    return read_state_dict(path, trust=TRUSTED if allow_pickle else
                           WEIGHTS_ONLY)


def load_original_checkpoint(model: nn.Module,
                             checkpoint: Union[str, Mapping],
                             allow_pickle: bool = False,
                             logger: Optional[MMLogger] = None) -> dict:
    """Load an original H2Crop checkpoint into :class:`H2CropSegmentor`.

    Loading is strict: every tensor of ``model`` must be provided with the
    right shape and nothing may be left over.

    Args:
        model: The segmentor (built with the checkpoint's dimensions).
        checkpoint: Path or (wrapped) state dict in the original layout.
        allow_pickle: See :func:`read_original_checkpoint`.
        logger: Logger (default: the current MMLogger).

    Returns:
        dict(loaded=int, dropped=list of dropped original keys).
    """
    logger = logger or MMLogger.get_current_instance()
    source = checkpoint if isinstance(checkpoint, str) else '<state dict>'
    if isinstance(checkpoint, str):
        checkpoint = read_original_checkpoint(checkpoint, allow_pickle)
    state, dropped = convert_original_state_dict(checkpoint, source)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state)
                   if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        lines = [f'{source}: does not fit {type(model).__name__}']
        if missing:
            lines.append(f'missing {len(missing)}: {missing[:10]}')
        if unexpected:
            lines.append(f'unexpected {len(unexpected)} (the model lacks '
                         f'these parts; check modalities / levels): '
                         f'{unexpected[:10]}')
        for k in wrong[:10]:
            lines.append(f'shape of {k}: checkpoint {tuple(state[k].shape)} '
                         f'vs model {tuple(own[k].shape)}')
        raise ValueError('\n'.join(lines))
    model.load_state_dict(state, strict=True)
    logger.info(f'loaded {len(state)} tensors from {source} (original H2Crop'
                f' layout); dropped {len(dropped)} unused keys')
    return dict(loaded=len(state), dropped=dropped)
