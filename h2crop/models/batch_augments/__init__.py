"""Batch augmentations applied by the data preprocessor on the device."""
from .cutmix import (
                     CutMixBox,
                     batch_cutmix,
                     check_cutmix_args,
                     sample_cutmix_boxes,
)

__all__ = ['CutMixBox', 'batch_cutmix', 'check_cutmix_args',
           'sample_cutmix_boxes']
