"""Instance normalisation (RevIN without affine parameters; docs/how-it-works.md §2, step 1).

Each sample and channel is centred on its own mean over time and scaled by its own standard
deviation; the forecast is mapped back with the same statistics. The statistics are returned to
the caller for every call instead of being kept on the module (the reference stores them on the
module, which breaks as soon as two forwards overlap).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class InstanceStatistics:
    """Per-sample, per-channel statistics of one call, detached."""

    mean: torch.Tensor  # (B, 1, N)
    stdev: torch.Tensor  # (B, 1, N): sqrt(biased variance + eps)


class InstanceNormalization(nn.Module):
    """RevIN without affine: normalise over the time axis, de-normalise with the same statistics."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, InstanceStatistics]:
        """x (B, T, N) -> normalised x (B, T, N) and the statistics to undo it."""
        mean = x.mean(dim=1, keepdim=True).detach()  # (B, 1, N)
        stdev = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()  # (B, 1, N)
        return (x - mean) / stdev, InstanceStatistics(mean=mean, stdev=stdev)

    def denormalize(self, y: torch.Tensor, statistics: InstanceStatistics) -> torch.Tensor:
        """y (B, L, N) in normalised units -> the original scale."""
        return y * statistics.stdev + statistics.mean
