"""Output head (docs/how-it-works.md §2, step 10): flatten the first d_ff features of the P patch positions, project to pred_len.

The flattening order is (d_ff, P), feature-major, as in the reference, so that its checkpoints load.
One linear layer is shared by all channels.
"""

from __future__ import annotations

import torch
from torch import nn


class FlattenHead(nn.Module):
    """(B*N, P, d_ff) LLM output slice -> (B, pred_len, N) forecast in normalised units."""

    def __init__(self, d_ff: int, patch_count: int, pred_len: int, dropout: float) -> None:
        super().__init__()
        self.d_ff = d_ff
        self.patch_count = patch_count
        self.linear = nn.Linear(d_ff * patch_count, pred_len)
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor, channels: int) -> torch.Tensor:
        series, positions, width = features.shape
        x = features.reshape(series // channels, channels, positions, width)  # (B, N, P, d_ff)
        x = x.permute(0, 1, 3, 2).flatten(start_dim=-2)  # (B, N, d_ff*P)
        x = self.dropout(self.linear(x))  # (B, N, pred_len)
        return x.permute(0, 2, 1)  # (B, pred_len, N)
