"""Patch reprogramming, spec 2.8: multi-head cross-attention from patch embeddings to text prototypes.

Queries come from the patch embeddings, keys and values from the prototypes; the attention
A (B*N, H, P, S) is the patch-to-prototype map the app shows. Head size d_keys = d_ff.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from timellm_core.model.attention_dropout import dropout_then_bmm


class ReprogrammingLayer(nn.Module):
    """(B*N, P, d_model) patches, (S, D) prototypes -> (B*N, P, D) reprogrammed patches and A."""

    def __init__(self, d_model: int, n_heads: int, d_keys: int, d_llm: int, attention_dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.d_keys = d_keys
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_llm, d_keys * n_heads)
        self.value_projection = nn.Linear(d_llm, d_keys * n_heads)
        self.out_projection = nn.Linear(d_keys * n_heads, d_llm)
        self.dropout = nn.Dropout(attention_dropout)

    def forward(self, patch_embeddings: torch.Tensor,
                prototypes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        series, positions, _ = patch_embeddings.shape
        heads, d_keys = self.n_heads, self.d_keys
        queries = self.query_projection(patch_embeddings)  # (B*N, P, H*E)
        keys = self.key_projection(prototypes).view(-1, heads, d_keys)  # (S, H, E)
        values = self.value_projection(prototypes).view(-1, heads, d_keys)  # (S, H, E)

        # softmax(Q K^T / sqrt(E)) per head, as batched matrix products over heads (the scale is
        # applied to Q, which is the same product): one contiguous (H, B*N*P, S) block, no einsum copies.
        queries = (queries * (1.0 / math.sqrt(d_keys))).view(series * positions, heads, d_keys).transpose(0, 1)
        attention = torch.softmax(torch.bmm(queries, keys.permute(1, 2, 0)), dim=-1)  # (H, B*N*P, S)
        mixed = dropout_then_bmm(attention, values.transpose(0, 1), self.dropout)  # (H, B*N*P, E)
        mixed = mixed.transpose(0, 1).reshape(series, positions, heads * d_keys)  # (B*N, P, H*E)
        out = self.out_projection(mixed)  # (B*N, P, D)
        prototype_attention = attention.view(heads, series, positions, -1).transpose(0, 1)  # (B*N, H, P, S)
        return out, prototype_attention
