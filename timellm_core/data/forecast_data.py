"""``ForecastData``: one dataset prepared for one (seq_len, pred_len): splits, scaler, windows.

The trainer, the model and the app all read data through this object, so the split borders,
the scaling and the window definition exist once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from timellm_core.data.frequency import time_features as calendar_features
from timellm_core.data.registry import DatasetSpec
from timellm_core.data.splits import SPLITS, window_count
from timellm_core.data.windows import WindowDataset
from timellm_core.errors import DataError


@dataclass(eq=False)
class ForecastData:
    """A checked series, its split borders and train-split scaler, and window access per split."""

    spec: DatasetSpec
    seq_len: int
    pred_len: int
    features: str  # M | S | MS
    frame: pd.DataFrame  # the checked frame ('date' + channels, target last), original units
    channels: list[str]  # input channels, in model order (target last)
    target_channels: list[str]  # output channels (all for M, [target] for S/MS)
    borders: dict[str, tuple[int, int]]  # split -> (start, end) row indices (half-open), after percent
    mean: np.ndarray  # (N_in,) scaler mean, fitted on the full train split
    std: np.ndarray  # (N_in,) scaler population std; 1 where a channel is constant
    description: str  # for the prompt
    period: int  # seasonal period for seasonal-naive
    target: str = "OT"  # the target column
    freq: str = ""  # pandas-style step ("h", "15min", ...)
    percent: int = 100
    scaler_rows: tuple[int, int] | None = None  # rows the scaler saw (the full train split)
    source: str = ""  # the file read, or how the data was made
    warnings: list[str] = field(default_factory=list)
    _scaled: np.ndarray = field(init=False, repr=False)  # (rows, N_in) float32
    _tensor: torch.Tensor = field(init=False, repr=False)  # the same memory, for windows

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.asarray(self.std, dtype=np.float64)
        self._scaled = np.ascontiguousarray(self.transform(self.frame[self.channels].to_numpy()))
        self._tensor = torch.from_numpy(self._scaled)

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def target_indices(self) -> list[int]:
        """Positions of the target channels among the input channels."""
        return [self.channels.index(name) for name in self.target_channels]

    def border(self, split: str) -> tuple[int, int]:
        try:
            return self.borders[split]
        except KeyError:
            raise DataError(f"Unknown split {split!r}: choose one of {', '.join(self.borders)}.") from None

    def split_rows(self, split: str) -> int:
        start, end = self.border(split)
        return end - start

    def split_values(self, split: str) -> np.ndarray:
        """The split's scaled values, (L, N_in) float32 (a copy, safe to modify)."""
        start, end = self.border(split)
        return self._scaled[start:end].copy()

    def split_dates(self, split: str) -> pd.DatetimeIndex:
        start, end = self.border(split)
        return pd.DatetimeIndex(self.frame["date"].iloc[start:end])

    def window_count(self, split: str) -> int:
        """L - T - pred_len + 1 windows, 0 when the split is too short."""
        return window_count(self.split_rows(split), self.seq_len, self.pred_len)

    def windows(self, split: str) -> WindowDataset:
        """Item i: (x (T, N_in), y (pred_len, N_out)) float32, scaled, viewing one tensor."""
        start, end = self.border(split)
        if self.window_count(split) == 0:
            raise DataError(f"The {split} split of {self.spec.name} has {end - start} rows: seq_len {self.seq_len} "
                            f"+ pred_len {self.pred_len} needs at least {self.seq_len + self.pred_len}. "
                            "Use shorter lengths or a longer series.")
        target_start = 0 if self.features == "M" else len(self.channels) - 1
        return WindowDataset(self._tensor[start:end], self.seq_len, self.pred_len, target_start)

    def time_features(self, split: str) -> np.ndarray:
        """`timeF` calendar features of the split's rows, (L, F) float32 in [-0.5, 0.5]."""
        return calendar_features(self.split_dates(split), self.freq)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Original units -> scaled, with this data's train-split scaler; (L, N_in) in ``channels`` order -> float32."""
        original = np.asarray(values, dtype=np.float64)  # (L, N_in)
        return ((original - self.mean) / self.std).astype(np.float32)

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        """Scaled values -> original units; the last axis is ``target_channels``."""
        values = np.asarray(values)
        index = self.target_indices
        if values.shape[-1] != len(index):
            raise ValueError(f"last axis has {values.shape[-1]} channels, expected {len(index)} "
                             f"({', '.join(self.target_channels)})")
        restored = values * self.std[index] + self.mean[index]
        return restored.astype(values.dtype) if np.issubdtype(values.dtype, np.floating) else restored

    def info(self) -> dict:
        """Plain facts for `data info` and the app: rows, channels, target, freq, windows per split."""
        dates = self.frame["date"]
        return {
            "name": self.spec.name,
            "rows": self.rows,
            "channels": len(self.channels),
            "channel_names": list(self.channels),
            "target": self.target,
            "target_channels": list(self.target_channels),
            "features": self.features,
            "freq": self.freq,
            "period": self.period,
            "seq_len": self.seq_len,
            "pred_len": self.pred_len,
            "percent": self.percent,
            "split_rule": self.spec.split_rule,
            "borders": {split: list(self.borders[split]) for split in SPLITS},
            "windows": {split: self.window_count(split) for split in SPLITS},
            "start": str(dates.iloc[0]) if len(dates) else "",
            "end": str(dates.iloc[-1]) if len(dates) else "",
            "source": self.source,
            "warnings": list(self.warnings),
        }
