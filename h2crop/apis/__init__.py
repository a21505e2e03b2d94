"""The public Python API of h2crop (model loading and inference)."""
from .inference import inference_model, init_model, resolve_inference_cfg

__all__ = ['init_model', 'inference_model', 'resolve_inference_cfg']
