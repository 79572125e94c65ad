"""Patching (docs/how-it-works.md §2, step 5): replicate the last value `stride` times, then cut overlapping windows.

P = int((T - patch_len) / stride + 2): the end padding adds one patch to the
int((T - patch_len) / stride) + 1 windows that fit in the unpadded series.
"""

from __future__ import annotations

import torch
from torch import nn

from timellm_core.config import patch_count  # noqa: F401 (P, re-exported next to the layer)


class Patching(nn.Module):
    """(B, N, T) series -> (B*N, P, patch_len) patches, each channel on its own."""

    def __init__(self, patch_len: int, stride: int) -> None:
        super().__init__()
        self.patch_len = patch_len
        self.stride = stride
        self.end_padding = nn.ReplicationPad1d((0, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, _ = x.shape
        x = self.end_padding(x)  # (B, N, T + stride)
        x = x.unfold(dimension=-1, size=self.patch_len, step=self.stride)  # (B, N, P, patch_len)
        return x.reshape(batch * channels, x.shape[2], self.patch_len)  # (B*N, P, patch_len)
