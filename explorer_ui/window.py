"""Picking one input window (split, window, channel) for the Patches and Prompt pages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from explorer_ui import shared
from explorer_ui.model import Inspected


@dataclass(frozen=True)
class WindowChoice:
    split: str
    index: int  # window number within the split
    channel: int  # channel position among the model's input channels
    channel_name: str
    label: str  # "test window 12, channel OT" or "M4 H1"


def pick_window(target: Inspected, key: str) -> WindowChoice:
    """Split, window slider and channel picker; for M4, a series picker over the test windows."""
    data = target.data
    if shared.is_m4(target.config.data.name):
        ids = list(data.series_ids)
        series_id = st.selectbox("Series (its last input window before the test horizon)", ids, key=f"{key}_m4")
        index = ids.index(series_id)
        return WindowChoice("test", index, 0, "value", f"M4 {series_id}")
    left, middle, right = st.columns([1, 3, 1])
    split = left.radio("Split", ["test", "val", "train"], key=f"{key}_split", horizontal=False)
    count = int(data.window_count(split))
    index = middle.slider(f"Window (of {count:,} in the {split} split)", 0, max(count - 1, 0), 0, key=f"{key}_index")
    channels = list(data.channels)
    default = channels.index(data.target) if data.target in channels else len(channels) - 1
    channel_name = right.selectbox("Channel", channels, index=default, key=f"{key}_channel")
    return WindowChoice(split, int(index), channels.index(channel_name), channel_name,
                        f"{split} window {index}, channel {channel_name}")


def raw_window(target: Inspected, choice: WindowChoice, scaled_input: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x values for the axis, the window in original units) for the chosen channel."""
    data, seq_len = target.data, target.config.model.seq_len
    if shared.is_m4(target.config.data.name):
        history = np.asarray(data.train_series(choice.index), dtype=float)
        return np.arange(history.size - seq_len, history.size), scaled_input[:, 0]  # M4 is never scaled
    start = data.border(choice.split)[0] + choice.index
    frame = data.frame.iloc[start:start + seq_len]
    return pd.DatetimeIndex(frame["date"]).to_numpy(), frame[choice.channel_name].to_numpy(dtype=float)
