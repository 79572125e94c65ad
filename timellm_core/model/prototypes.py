"""Text prototypes (docs/how-it-works.md §2, step 7): S trainable mixtures of the frozen word embeddings.

A Linear(V -> S) applied to the transposed word-embedding matrix (D, V) gives (D, S); transposed,
the S prototypes of width D. Written here as one matrix product, W (S, V) @ E (V, D) + b, which is
the same sum without the two transposes.

The result depends only on the mapping's weights (the embeddings are frozen), so:
- in training every forward is one step and computes it once;
- in eval mode, with autograd off, it is computed once per model state and reused. The cache is
  keyed on the weights' version counters (bumped by every in-place update: optimiser steps,
  ``load_state_dict``) and storage, and is also cleared by ``train()``/``eval()``.
"""

from __future__ import annotations

import torch
from torch import nn


class TextPrototypes(nn.Module):
    """(V, D) frozen word embeddings -> (S, D) prototypes."""

    def __init__(self, vocab_size: int, num_prototypes: int) -> None:
        super().__init__()
        self.mapping = nn.Linear(vocab_size, num_prototypes)
        self._cached: torch.Tensor | None = None
        self._cache_key: tuple | None = None
        self.computations = 0  # how many times the product was computed (tests and benchmarks read it)

    def compute(self, word_embeddings: torch.Tensor) -> torch.Tensor:
        """Always compute (the reference's way: once per forward)."""
        self.computations += 1
        embeddings = word_embeddings
        if not torch.is_autocast_enabled(embeddings.device.type):  # (autocast casts both to its dtype)
            embeddings = embeddings.to(self.mapping.weight.dtype)  # no copy for a float32 backbone
        # (S, V) @ (V, D) + (S, 1) -> (S, D)
        return torch.addmm(self.mapping.bias.unsqueeze(1), self.mapping.weight, embeddings)

    def forward(self, word_embeddings: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            # Training, or someone wants gradients: a cached tensor would carry no graph.
            return self.compute(word_embeddings)
        key = self._state_key(word_embeddings)
        if self._cached is None or self._cache_key != key:
            self._cached = self.compute(word_embeddings)
            self._cache_key = key
        return self._cached

    def clear_cache(self) -> None:
        self._cached = None
        self._cache_key = None

    def train(self, mode: bool = True) -> "TextPrototypes":
        self.clear_cache()
        return super().train(mode)

    def _state_key(self, word_embeddings: torch.Tensor) -> tuple:
        weight, bias = self.mapping.weight, self.mapping.bias
        autocast = torch.is_autocast_enabled(word_embeddings.device.type)
        return (weight._version, weight.data_ptr(), bias._version, bias.data_ptr(),
                word_embeddings.data_ptr(), word_embeddings.dtype, word_embeddings.device,
                autocast, torch.get_autocast_dtype(word_embeddings.device.type) if autocast else None)
