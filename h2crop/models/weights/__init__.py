"""Pretrained-weight loaders of h2crop."""
from .agrifm import (
                     PATCH_KERNEL_POLICIES,
                     AgriFMInit,
                     fold_patch_kernel,
                     load_agrifm_weights,
                     load_encoder_state_dict,
                     load_mapped_state_dict,
                     map_agrifm_state_dict,
                     read_checkpoint,
)

__all__ = [
    'PATCH_KERNEL_POLICIES', 'AgriFMInit', 'fold_patch_kernel',
    'load_agrifm_weights', 'load_encoder_state_dict', 'load_mapped_state_dict',
    'map_agrifm_state_dict', 'read_checkpoint'
]
