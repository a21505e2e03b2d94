"""Classification heads of h2crop."""
from .cascade_heads import CascadeHeads

__all__ = ['CascadeHeads']
