"""A randomly initialised twin of a backbone: ``llm_mode=random`` in the ablations of Tan et al. (NeurIPS 2024).

The twin has the backbone's architecture and size exactly (its config, truncated to ``llm_layers``),
its tokenizer and its frozen treatment; only the weights differ: they come from the model class's
own initialisation (``post_init``: e.g. normal(0, initializer_range) for LLaMA and Qwen2) under a
fixed seed, so every run of the study sees the same random LLM. Nothing is downloaded and no
pretrained weight is read: ``load_random_backbone`` reads only the config and the tokenizer.

Two ways to get one, giving identical weights:

- ``load_random_backbone(config)``: straight from the backbone's config file (what training loads);
- ``randomly_initialised(backbone)``: from a backbone already in memory (the app's cached one).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import torch

from timellm_core.backbones.base import Backbone, BackboneSpec
from timellm_core.backbones.families import base_model_class, base_model_kwargs, truncated_config
from timellm_core.backbones.gguf_weights import gguf_model_config
from timellm_core.backbones.hf_quiet import quiet_transformers
from timellm_core.backbones.loading import (
    ATTENTION_IMPLEMENTATIONS, WeightsSource, _check_llm_dim, _from_pretrained, _load_tokenizer, checked_load_options,
    finish_backbone, weights_source)
from timellm_core.backbones.tiny import tiny_config, tiny_tokenizer
from timellm_core.config import BackboneConfig
from timellm_core.errors import BackboneError

RANDOM_INIT_SEED = 20241210  # one seed for every run: the random LLM is part of the setting, not of the run


def build_random_model(hf_config: Any, family: str, seed: int = RANDOM_INIT_SEED,
                       attn_implementation: str = "sdpa", trust_remote_code: bool = False) -> torch.nn.Module:
    """The base model (no LM head) that ``hf_config`` describes, its weights from the class's own init.

    Built in float32 on the CPU under ``seed``; the caller's random stream is left as it was.
    """
    hf_config = copy.deepcopy(hf_config)
    if hasattr(hf_config, "quantization_config"):  # a 4-bit load's config: the twin is quantised afterwards
        del hf_config.quantization_config
    hf_config._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]), quiet_transformers():
        torch.manual_seed(int(seed))
        if trust_remote_code:
            from transformers import AutoModel

            model = AutoModel.from_config(hf_config, trust_remote_code=True)
        else:
            model = base_model_class(family)(hf_config, **base_model_kwargs(family))
    return model.float()


def _note(spec: BackboneSpec, seed: int) -> str:
    return (f"Randomly initialised (llm_mode=random, seed {seed}): the architecture, size and tokenizer of "
            f"{spec.name}, none of its pretrained weights.")


def _quantised(model: torch.nn.Module, tokenizer: Any, spec: BackboneSpec, config: BackboneConfig,
               device: torch.device, dtype: torch.dtype, attn_implementation: str) -> torch.nn.Module:
    """The random model in 4-bit NF4, through the same from_pretrained path as every 4-bit load."""
    with tempfile.TemporaryDirectory(prefix="timellm-random-") as folder, quiet_transformers():
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        layers = BackboneConfig(name=config.name, llm_layers=int(model.config.num_hidden_layers), load_in_4bit=True,
                                trust_remote_code=config.trust_remote_code)
        return _from_pretrained(spec, WeightsSource(Path(folder), None, spec.name), layers, device, dtype,
                                attn_implementation)


def architecture_of(spec: BackboneSpec, config: BackboneConfig, attn_implementation: str = "sdpa"
                    ) -> tuple[Any, Any, WeightsSource | None]:
    """(the full-depth Hugging Face config, the tokenizer, where they were read) without any weight."""
    if spec.tiny:
        return tiny_config(spec.name, attn_implementation), tiny_tokenizer(spec.name), None
    source = weights_source(spec)  # BackboneError with the fetch command when the folder is absent
    if source.gguf_file:
        hf_config = gguf_model_config(Path(source.folder) / source.gguf_file)
    else:
        from transformers import AutoConfig

        try:
            hf_config = AutoConfig.from_pretrained(str(source.folder), local_files_only=True,
                                                   trust_remote_code=bool(config.trust_remote_code))
        except (OSError, ValueError) as error:
            raise BackboneError(f"Cannot read the model config of {source.label}: {error}") from None
    return hf_config, _load_tokenizer(source, config), source


def load_random_backbone(config: BackboneConfig, device: str | torch.device | None = None,
                         attn_implementation: str = "sdpa", dtype: str | torch.dtype | None = None,
                         seed: int = RANDOM_INIT_SEED) -> Backbone:
    """``config.name``'s architecture truncated to ``llm_layers``, randomly initialised under ``seed``, frozen.

    Reads the config and the tokenizer only (a folder, a GGUF file's header, or a tiny backbone's
    definition); the same options as ``load_backbone`` (4-bit quantises the random weights).
    """
    spec, device, torch_dtype = checked_load_options(config, device, dtype, attn_implementation)
    hf_config, tokenizer, source = architecture_of(spec, config, attn_implementation)
    _check_llm_dim(config.llm_dim, hf_config.hidden_size, spec.name)
    hf_config = truncated_config(hf_config, int(config.llm_layers), spec.name)
    model = build_random_model(hf_config, spec.family, seed, attn_implementation, bool(config.trust_remote_code))
    if config.load_in_4bit:
        model = _quantised(model, tokenizer, spec, config, device, torch_dtype, attn_implementation)
    else:
        model = model.to(device=device, dtype=torch_dtype)
    return finish_backbone(spec, model, tokenizer, config, None, [_note(spec, seed)], random_init_seed=seed)


def randomly_initialised(backbone: Backbone, seed: int = RANDOM_INIT_SEED) -> Backbone:
    """The random twin of a loaded backbone (itself when it already is one, drawn under ``seed``).

    Same config (already truncated), tokenizer, device, dtype and 4-bit setting; new weights.
    """
    if backbone.random_init_seed == int(seed):
        return backbone
    spec, hf_config = backbone.spec, backbone.model.config
    attn_implementation = getattr(hf_config, "_attn_implementation", None) or "sdpa"
    if attn_implementation not in ATTENTION_IMPLEMENTATIONS:
        attn_implementation = "sdpa"
    config = BackboneConfig(name=spec.name, llm_layers=int(backbone.num_layers),
                            load_in_4bit=bool(backbone.load_in_4bit))
    model = build_random_model(hf_config, spec.family, seed, attn_implementation)
    if backbone.load_in_4bit:
        model = _quantised(model, backbone.tokenizer, spec, config, backbone.device, backbone.compute_dtype,
                           attn_implementation)
    else:
        model = model.to(device=backbone.device, dtype=backbone.compute_dtype)
    return finish_backbone(spec, model, backbone.tokenizer, config, None, [_note(spec, seed)],
                           random_init_seed=int(seed))
