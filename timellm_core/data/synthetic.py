"""The Synthetic dataset: a deterministic hourly series made in code, so everything works offline.

Six channels built from the same parts a forecaster must learn: a daily cycle (24 steps), a
weekly cycle (168 steps), a slow trend and noise. The target ``OT`` mixes them all. The seed is
fixed, so every call returns the same numbers.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

SYNTHETIC_ROWS = 24 * 365  # one year of hours
SYNTHETIC_START = "2021-01-04 00:00:00"  # a Monday, so the weekly cycle starts with the week
SYNTHETIC_SEED = 20240229
DAY, WEEK = 24, 24 * 7


def synthetic_frame(rows: int = SYNTHETIC_ROWS) -> pd.DataFrame:
    """The Synthetic series: 'date' + daily, weekly, daily_weekly, trend, noisy, OT; a fresh copy."""
    return _synthetic(int(rows)).copy()


@lru_cache(maxsize=2)
def _synthetic(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(SYNTHETIC_SEED)
    t = np.arange(rows, dtype=np.float64)  # (L,) hours since start
    daily = np.sin(2 * np.pi * t / DAY)
    weekly = np.sin(2 * np.pi * t / WEEK)
    weekday_peak = np.where((t // DAY) % 7 < 5, 1.0, 0.4)  # weekdays busier than weekends
    trend = t / rows  # 0 -> 1 over the series

    noise = rng.normal(0.0, 1.0, size=(rows, 6))  # (L, 6) one stream per channel
    channels = {
        "daily": 10.0 + 3.0 * daily + 0.3 * noise[:, 0],
        "weekly": 5.0 + 2.0 * weekly + 0.3 * noise[:, 1],
        "daily_weekly": 20.0 + 4.0 * weekday_peak * np.clip(daily, 0, None) + 1.5 * weekly + 0.4 * noise[:, 2],
        "trend": 2.0 + 6.0 * trend + 0.5 * np.sin(2 * np.pi * t / (DAY * 30)) + 0.2 * noise[:, 3],
        "noisy": 1.0 * np.cumsum(0.05 * noise[:, 4]) + 0.8 * daily,
    }
    channels["OT"] = (30.0 + 5.0 * daily * weekday_peak + 2.0 * weekly + 8.0 * trend
                      + 0.6 * noise[:, 5])
    frame = pd.DataFrame({name: values.round(4) for name, values in channels.items()})
    frame.insert(0, "date", pd.date_range(SYNTHETIC_START, periods=rows, freq="h"))
    return frame
