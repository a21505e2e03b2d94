"""Entry points shared by tools/train.py and tools/test.py."""
from .runner_builder import (build_runner_from_args, finish_args,
                             parse_cfg_options, prepare_cfg)

__all__ = [
    'build_runner_from_args', 'finish_args', 'parse_cfg_options',
    'prepare_cfg'
]
