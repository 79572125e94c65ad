"""Patch reprogramming (docs/how-it-works.md §2, step 8): multi-head cross-attention from patch embeddings to text prototypes.

Queries come from the patch embeddings, keys and values from the prototypes; the attention
A (B*N, H, P, S) is the patch-to-prototype map the app shows. Head size d_keys = d_ff.

Two ways to compute it, same numbers: the plain one materialises A (the reference's way, and
whenever the map is wanted); ``keep_attention=False`` computes it a block at a time and keeps
only Q, K, V for the backward pass (``prototype_attention``), for the optimised path's steps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from timellm_core.model.prototype_attention import blockwise_prototype_attention


class ReprogrammingLayer(nn.Module):
    """(B*N, P, d_model) patches, (S, D) prototypes -> (B*N, P, D) reprogrammed patches and A (or None)."""

    def __init__(self, d_model: int, n_heads: int, d_keys: int, d_llm: int, attention_dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_keys = d_keys
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_llm, d_keys * n_heads)
        self.value_projection = nn.Linear(d_llm, d_keys * n_heads)
        self.out_projection = nn.Linear(d_keys * n_heads, d_llm)
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, patch_embeddings: torch.Tensor, prototypes: torch.Tensor, keep_attention: bool = True,
                quick_mask: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``quick_mask`` (blockwise only, the fast path): a quicker dropout draw (``prototype_attention``)."""
        series, positions, _ = patch_embeddings.shape
        heads, d_keys = self.n_heads, self.d_keys
        queries = self.query_projection(patch_embeddings)  # (B*N, P, H*E)
        keys = self.key_projection(prototypes).view(-1, heads, d_keys).transpose(0, 1)  # (H, S, E)
        values = self.value_projection(prototypes).view(-1, heads, d_keys).transpose(0, 1)  # (H, S, E)

        # softmax(Q K^T / sqrt(E)) per head, as batched matrix products over heads (the scale is
        # applied to Q, which is the same product): one contiguous (H, B*N*P, S) block, no einsum copies.
        queries = (queries * (1.0 / math.sqrt(d_keys))).view(series * positions, heads, d_keys).transpose(0, 1)
        prototype_attention = None
        if keep_attention:
            attention = torch.softmax(torch.bmm(queries, keys.transpose(1, 2)), dim=-1)  # (H, B*N*P, S)
            mixed = torch.bmm(self.dropout(attention), values)  # (H, B*N*P, E)
            prototype_attention = attention.view(heads, series, positions, -1).transpose(0, 1)  # (B*N, H, P, S)
        else:
            p = float(self.dropout.p) if self.dropout.training else 0.0
            mixed = blockwise_prototype_attention(queries, keys, values, p, quick_mask)  # (H, B*N*P, E)
        mixed = mixed.transpose(0, 1).reshape(series, positions, heads * d_keys)  # (B*N, P, H*E)
        return self.out_projection(mixed), prototype_attention  # (B*N, P, D)
