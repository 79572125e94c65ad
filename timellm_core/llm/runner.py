"""How the frozen LLM is run over [prompt][reprogrammed patches] (docs/how-it-works.md §2 step 9, §5), exactly and fast.

Sequence layout, the same in every path::

    [shared prefix (Lp)][left padding][per-series statistics][P reprogrammed patches]

The attention mask is 0 on the padding and the position ids are cumsum(mask) - 1, so every
series sees contiguous positions whatever its padding, and the patches are the last P positions.

Paths:
- full (``optimize=False``, and every bidirectional backbone): the whole sequence in one call.
  With ``optimize=False`` it is run the reference's way: eager attention returning every attention
  map and hidden state, autograd through the whole prompt.
- cached (the default for causal backbones): the shared prefix is run once under no_grad and its
  key/value cache memoised (recomputed when its token ids, the backbone, dtype or autocast change);
  each batch expands it to B*N rows (views), runs the statistics part under no_grad with it, then
  runs only the P patch positions with autograd. Nothing trainable precedes the prompt, so the
  prompt's keys and values are constants and the result is the full path's, up to rounding.
  A fresh cache object is made per batch: forward mutates the cache it is given, never the memo.
  The statistics tokens' outputs are never read, only their keys and values: in the last layer
  the forward stops as soon as those are stored (the rest of that layer is skipped).
  Attention is sdpa with grouped key/value heads left to torch (``grouped_attention``); eager, with
  attention maps, only when a trace asks for the LLM's attention. LLaMA-style gated MLPs recompute
  their intermediate activations in the backward pass instead of keeping them (``gated_mlp``;
  not on the fast path, which spends memory for speed).

Fast path (``fast=FastPrecision``, passed by the model; ``precision.py`` picks it per machine): it
skips the gated-MLP recomputation (memory for speed). When its precision is below float32 (bf16, or
fp16 on GPUs without bf16) and the backbone's weights are float32, the runner keeps copies of them
in that precision (made once, ~half the backbone's size) and runs the LLM on those with a
low-precision residual stream, as a model loaded in bf16 would run: autocast (entered by the
model) would otherwise cast every weight again at every call. Quantised (4-bit) backbones stay
under plain autocast. Where bf16 is not faster (CPUs without bf16 instructions) the fast path
stays in float32.

The backbone stays in eval mode (its dropout off): the frozen LLM is a fixed function here.
"""

from __future__ import annotations

import functools
import threading
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch

from timellm_core.backbones.base import Backbone
from timellm_core.llm.gated_mlp import lighter_gated_mlps
from timellm_core.llm.grouped_attention import register_grouped_sdpa
from timellm_core.llm.precision import FastPrecision

_LOCKS: "weakref.WeakKeyDictionary[torch.nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def backbone_lock(model: torch.nn.Module) -> threading.RLock:
    """One lock per loaded LLM: its attention implementation is switched per call, so calls take turns."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def _configs(model: torch.nn.Module) -> list:
    """Every distinct config object in the model: each attention layer reads the one it holds, which
    need not be the model's own (composite models keep sub-configs)."""
    found = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            found[id(config)] = config
    return list(found.values())


@contextmanager
def attention_implementation(model: torch.nn.Module, name: str) -> Iterator[None]:
    """Run with ``eager`` (attention maps) or ``sdpa`` (fast), then restore what the model had.

    Callers hold ``backbone_lock(model)``: the switch is visible to every user of the model.
    """
    configs = [config for config in _configs(model) if config._attn_implementation != name]
    previous = [config._attn_implementation for config in configs]
    for config in configs:
        config._attn_implementation = name
    try:
        yield
    finally:
        for config, value in zip(configs, previous):
            config._attn_implementation = value


def layout_positions(mask: torch.Tensor) -> torch.Tensor:
    """(B*N, L) attention mask -> position ids counting only real tokens."""
    return (mask.cumsum(dim=-1) - 1).clamp(min=0)


class _KeysStored(Exception):
    """Raised by the last cache layer once the statistics tokens' keys and values are stored."""


@functools.cache
def _keys_only_layer_class() -> type:
    """Defined on first use: transformers is imported lazily."""
    from transformers.cache_utils import DynamicLayer

    class KeysOnlyLastLayer(DynamicLayer):
        """A dynamic cache layer that can end the forward right after storing its keys and values."""

        stop_after_update = True

        def update(self, key_states, value_states, *args, **kwargs):
            keys, values = super().update(key_states, value_states, *args, **kwargs)
            if self.stop_after_update:
                raise _KeysStored
            return keys, values

    return KeysOnlyLastLayer


@dataclass
class PromptState:
    """A batch's prompt, ready for its patches (see ``LLMRunner.encode_prompt``)."""

    prefix_ids: torch.Tensor  # (Lp,)
    series_ids: torch.Tensor  # (B*N, Ls) left-padded
    series_mask: torch.Tensor  # (B*N, Ls)
    cached: bool  # the cached path; else the whole sequence runs with the patches
    reference: bool  # the full path run the reference's way (optimize=False)
    cache: object | None = None  # cached path: prefix + statistics keys/values for B*N rows


@dataclass
class LLMOutput:
    """What the LLM gives back for the patch positions."""

    patch_hidden: torch.Tensor  # (B*N, P, D) last hidden state (final norm included), float32
    attentions: list[torch.Tensor] | None  # per layer (B*N, heads, P, L): rows of the patch queries
    path: str  # "cached" | "full" | "reference"


class LLMRunner:
    """Runs one backbone's frozen LLM; memoises the shared prefix's key/value cache."""

    def __init__(self, backbone: Backbone, fast: FastPrecision | None = None) -> None:
        self.backbone = backbone
        self.fast = fast  # None: the exact path (float32 or the backbone's dtype, MLPs recomputed)
        self._prefix_key: tuple | None = None
        self._prefix_cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per layer (1, kv, Lp, hd)
        self._prefix_guard = threading.Lock()
        self.prefix_computations = 0  # how many times the prefix ran (tests read it)
        self._supports_cache: bool | None = None
        self._lowered_key: tuple | None = None
        self._lowered_guard = threading.Lock()
        self._lowered: dict[str, torch.Tensor] | None = None  # fast path: low-precision weight copies

    @property
    def supports_cache(self) -> bool:
        """Causal backbones whose cache layers are plain dynamic ones (no sliding windows)."""
        if self._supports_cache is None:
            self._supports_cache = False
            if self.backbone.causal:
                from transformers import DynamicCache
                from transformers.cache_utils import DynamicLayer

                layers = DynamicCache(config=self.backbone.model.config).layers
                self._supports_cache = (len(layers) == self.backbone.num_layers
                                        and all(type(layer) is DynamicLayer for layer in layers))
        return self._supports_cache

    def encode_prompt(self, prefix_ids: torch.Tensor, series_ids: torch.Tensor, series_mask: torch.Tensor,
                      *, optimize: bool = True) -> PromptState:
        """Prepare the prompt part of a batch: on the cached path, run it (no autograd) into a cache.

        Called before the patches exist, so its temporary tensors come and go before autograd
        starts keeping activations (a lower memory peak); the math does not depend on the order.
        """
        device = self.backbone.device
        prefix_ids, series_ids, series_mask = prefix_ids.to(device), series_ids.to(device), series_mask.to(device)
        state = PromptState(prefix_ids=prefix_ids, series_ids=series_ids, series_mask=series_mask,
                            cached=optimize and self.supports_cache, reference=not optimize)
        if state.cached:
            with backbone_lock(self.backbone.model):
                state.cache = self._encode_series(prefix_ids, series_ids, series_mask)
        return state

    def run_patches(self, state: PromptState, patches: torch.Tensor, *, output_attentions: bool = False) -> LLMOutput:
        """The reprogrammed patches (B*N, P, D) after the prompt -> the patch positions' output."""
        with backbone_lock(self.backbone.model):
            if state.cached:
                return self._run_cached(state, patches, output_attentions)
            return self._run_full(state.prefix_ids, state.series_ids, state.series_mask, patches, output_attentions,
                                  reference=state.reference)

    def run(self, prefix_ids: torch.Tensor, series_ids: torch.Tensor, series_mask: torch.Tensor,
            patches: torch.Tensor, *, optimize: bool = True, output_attentions: bool = False) -> LLMOutput:
        """prefix (Lp,), series (B*N, Ls) + mask, patches (B*N, P, D) -> the patch positions' output."""
        state = self.encode_prompt(prefix_ids, series_ids, series_mask, optimize=optimize)
        return self.run_patches(state, patches, output_attentions=output_attentions)

    # -- full sequence ---------------------------------------------------------------------------

    def _run_full(self, prefix_ids: torch.Tensor, series_ids: torch.Tensor, series_mask: torch.Tensor,
                  patches: torch.Tensor, output_attentions: bool, reference: bool) -> LLMOutput:
        backbone, model = self.backbone, self.backbone.model
        series, patch_count = patches.shape[0], patches.shape[1]
        dtype = self._call_dtype()
        prompt = torch.cat([backbone.embed(prefix_ids).unsqueeze(0).expand(series, -1, -1),
                            backbone.embed(series_ids)], dim=1).to(dtype)  # (B*N, Lp + Ls, D)
        embeds = torch.cat([prompt, patches.to(dtype)], dim=1)  # (B*N, L, D)
        mask = self._layout_mask(prefix_ids, series_mask, patch_count)  # (B*N, L)
        want_maps = reference or output_attentions
        with attention_implementation(model, "eager" if want_maps else "sdpa"):
            out = self._call(inputs_embeds=embeds, attention_mask=mask, position_ids=layout_positions(mask),
                             use_cache=False, output_attentions=want_maps, output_hidden_states=reference)
        attentions = None
        if output_attentions:
            attentions = [layer[:, :, -patch_count:, :] for layer in out.attentions]  # (B*N, heads, P, L)
        return LLMOutput(patch_hidden=out.last_hidden_state[:, -patch_count:].float(), attentions=attentions,
                         path="reference" if reference else "full")

    # -- cached prefix ----------------------------------------------------------------------------

    def _encode_series(self, prefix_ids: torch.Tensor, series_ids: torch.Tensor, series_mask: torch.Tensor):
        """The memoised prefix, expanded to B*N rows, then the statistics tokens run into the same cache."""
        model = self.backbone.model
        series, prefix_len, series_len = series_ids.shape[0], prefix_ids.shape[0], series_ids.shape[1]
        cache = self._expanded_prefix_cache(prefix_ids, series)
        if series_len:
            mask = self._layout_mask(prefix_ids, series_mask, 0)  # (B*N, Lp + Ls)
            with torch.no_grad(), attention_implementation(model, register_grouped_sdpa()):
                try:
                    self._call(inputs_embeds=self.backbone.embed(series_ids).to(self._call_dtype()),
                               attention_mask=mask, position_ids=layout_positions(mask)[:, prefix_len:],
                               cache=cache, use_cache=True)
                except _KeysStored:
                    pass
        cache.layers[-1].stop_after_update = False  # the patch positions need the whole last layer
        return cache

    def _run_cached(self, state: PromptState, patches: torch.Tensor, output_attentions: bool) -> LLMOutput:
        if state.cache is None:
            raise RuntimeError("This prompt state was already used: forward extends its cache, so each batch "
                               "needs its own encode_prompt call.")
        model, patch_count = self.backbone.model, patches.shape[1]
        mask = self._layout_mask(state.prefix_ids, state.series_mask, patch_count)  # (B*N, Lp + Ls + P)
        attention = "eager" if output_attentions else register_grouped_sdpa()
        # The fast path keeps the MLP activations: recomputing them would cost it ~7% of a step.
        lighter_mlps = nullcontext() if self.fast is not None else lighter_gated_mlps(model)
        with attention_implementation(model, attention), lighter_mlps:
            out = self._call(inputs_embeds=patches.to(self._call_dtype()), attention_mask=mask,
                             position_ids=layout_positions(mask)[:, -patch_count:], cache=state.cache,
                             use_cache=True, output_attentions=output_attentions)
        state.cache = None  # consumed: running the patches again would need the prompt encoded again
        attentions = list(out.attentions) if output_attentions else None  # (B*N, heads, P, L) each
        return LLMOutput(patch_hidden=out.last_hidden_state.float(), attentions=attentions, path="cached")

    def _expanded_prefix_cache(self, prefix_ids: torch.Tensor, series: int):
        """A fresh cache whose layers hold the memoised prefix keys/values expanded to B*N rows (views)."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.backbone.model.config)
        cache.layers[-1] = _keys_only_layer_class()()
        for layer, (keys, values) in zip(cache.layers, self._prefix_key_values(prefix_ids)):
            layer.lazy_initialization(keys, values)
            layer.keys = keys.expand(series, -1, -1, -1)  # (B*N, kv_heads, Lp, head_dim), no copy
            layer.values = values.expand(series, -1, -1, -1)
        return cache

    def _prefix_key_values(self, prefix_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        model = self.backbone.model
        device_type = prefix_ids.device.type
        autocast = torch.is_autocast_enabled(device_type)
        key = (id(model), tuple(prefix_ids.tolist()), self.backbone.compute_dtype, prefix_ids.device,
               autocast, torch.get_autocast_dtype(device_type) if autocast else None,
               sum(parameter._version for parameter in model.parameters()))
        with self._prefix_guard:
            if self._prefix_key != key or self._prefix_cache is None:
                self._prefix_cache = self._compute_prefix(prefix_ids)
                self._prefix_key = key
            return self._prefix_cache

    def _compute_prefix(self, prefix_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from transformers import DynamicCache

        model = self.backbone.model
        cache = DynamicCache(config=model.config)
        # Normal tensors even when called under inference_mode: the memo is reused by training steps.
        with torch.inference_mode(False), torch.no_grad(), attention_implementation(model, "sdpa"):
            ids = prefix_ids.clone().unsqueeze(0)  # (1, Lp)
            self._call(inputs_embeds=self.backbone.embed(ids).to(self._call_dtype()),
                       attention_mask=torch.ones_like(ids),
                       position_ids=torch.arange(ids.shape[1], device=ids.device).unsqueeze(0), cache=cache,
                       use_cache=True)
        self.prefix_computations += 1
        return [(layer.keys, layer.values) for layer in cache.layers]

    # -- fast path: low-precision weights ----------------------------------------------------------

    def word_embeddings(self) -> torch.Tensor:
        """The frozen (V, D) word embeddings, as the LLM runs them now (the low-precision copy when fast)."""
        lowered = self._lowered_weights()
        if lowered is not None:
            return lowered[self._embedding_name()]
        return self.backbone.word_embeddings()

    def _call(self, **kwargs):
        """Call the LLM, on its low-precision weight copies on the fast path."""
        lowered = self._lowered_weights()
        if lowered is None:
            return self.backbone.model(**kwargs)
        return torch.func.functional_call(self.backbone.model, lowered, args=(), kwargs=kwargs)

    def _call_dtype(self) -> torch.dtype:
        return self.fast.dtype if self._lowered_weights() is not None else self.backbone.compute_dtype

    def _lowered_weights(self) -> dict[str, torch.Tensor] | None:
        """Copies of a float32 backbone's weights in the fast precision (memoised), else None."""
        if self.fast is None or not self.fast.lowered:
            return None
        model = self.backbone.model
        parameters = dict(model.named_parameters())
        if any(parameter.dtype != torch.float32 for parameter in parameters.values()):
            return None  # quantised or already low precision: autocast as is
        key = (id(model), self.fast.name, sum(parameter._version for parameter in parameters.values()))
        with self._lowered_guard:
            if self._lowered_key != key or self._lowered is None:
                with torch.inference_mode(False), torch.no_grad():
                    self._lowered = {name: parameter.detach().to(self.fast.dtype)
                                     for name, parameter in parameters.items()}
                self._lowered_key = key
            return self._lowered

    def _embedding_name(self) -> str:
        table = self.backbone.model.get_input_embeddings().weight
        return next(name for name, parameter in self.backbone.model.named_parameters() if parameter is table)

    @staticmethod
    def _layout_mask(prefix_ids: torch.Tensor, series_mask: torch.Tensor, patch_count: int) -> torch.Tensor:
        series = series_mask.shape[0]
        ones = series_mask.new_ones
        return torch.cat([ones((series, prefix_ids.shape[0])), series_mask, ones((series, patch_count))], dim=1)
