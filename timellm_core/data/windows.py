"""Sliding forecast windows over one split, as views into a single tensor (no copy per window)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class WindowDataset(Dataset):
    """Item i: x = rows [i, i+T) of every input channel, y = rows [i+T, i+T+pred_len) of the targets.

    ``values`` is the whole split, (L, N_in) float32, already scaled. Targets are the input
    channels from ``target_start`` on: 0 for `M` (all channels), N_in - 1 for `S`/`MS` (the
    target is the last channel). Both x and y are views of ``values``.
    """

    def __init__(self, values: torch.Tensor, seq_len: int, pred_len: int, target_start: int = 0):
        if values.ndim != 2:
            raise ValueError(f"values must be (L, N), got shape {tuple(values.shape)}")
        self.values = values  # (L, N_in)
        self.seq_len = int(seq_len)
        self.pred_len = int(pred_len)
        self.target_start = int(target_start)
        self.count = max(0, values.shape[0] - self.seq_len - self.pred_len + 1)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(index)
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(f"window {index} out of range for {self.count} windows")
        cut = index + self.seq_len
        x = self.values[index:cut]  # (T, N_in)
        y = self.values[cut:cut + self.pred_len, self.target_start:]  # (pred_len, N_out)
        return x, y
