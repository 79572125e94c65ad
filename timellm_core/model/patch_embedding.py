"""Patch embedding (docs/how-it-works.md §2, step 6): a circular Conv1d across neighbouring patches, patch_len -> d_model.

The patch values are the convolution's input channels and the patch index is its length axis,
so each embedding mixes a patch with the patch before and after it (wrapping around at the ends).
"""

from __future__ import annotations

import torch
from torch import nn


class PatchEmbedding(nn.Module):
    """(B*N, P, patch_len) patches -> (B*N, P, d_model) embeddings."""

    def __init__(self, patch_len: int, d_model: int, dropout: float) -> None:
        super().__init__()
        self.token_convolution = nn.Conv1d(
            in_channels=patch_len, out_channels=d_model, kernel_size=3, padding=1,
            padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.token_convolution.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.dropout = nn.Dropout(dropout)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.token_convolution(patches.transpose(1, 2))  # (B*N, d_model, P)
        return self.dropout(x.transpose(1, 2))  # (B*N, P, d_model)
