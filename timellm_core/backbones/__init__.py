"""LLM backbones: catalogue, loading (tiny, local folder, GGUF, cached hub id), 4-bit, fetch, memory planning."""

from timellm_core.backbones.base import Backbone, BackboneSpec
from timellm_core.backbones.catalogue import (
    CATALOGUE,
    DEFAULT_BACKBONE,
    base_models_dir,
    is_available,
    list_backbones,
    resolve_backbone_spec,
)
from timellm_core.backbones.loading import load_backbone, resolve_device
from timellm_core.backbones.tiny import save_tiny_backbone, tiny_tokenizer

__all__ = [
    "Backbone",
    "BackboneSpec",
    "CATALOGUE",
    "DEFAULT_BACKBONE",
    "base_models_dir",
    "is_available",
    "list_backbones",
    "load_backbone",
    "resolve_backbone_spec",
    "resolve_device",
    "save_tiny_backbone",
    "tiny_tokenizer",
]
