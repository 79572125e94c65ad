"""Sampling frequency: guessing it from timestamps, its seasonal period, and `timeF` time features."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

_DAY = pd.Timedelta(days=1)
_WEEK = pd.Timedelta(days=7)


def step_of(freq: str) -> pd.Timedelta:
    """The nominal length of one step of a pandas-style frequency ("h", "15min", "W", "MS", ...)."""
    offset = to_offset(freq)
    try:  # fixed-length offsets (seconds, minutes, hours, days)
        return pd.Timedelta(offset.nanos, unit="ns")
    except ValueError:
        pass
    name = offset.name.upper()  # calendar offsets have no fixed length: use their typical one
    if name.startswith("W"):
        return _WEEK * offset.n
    if name.startswith(("MS", "ME", "M")):
        return pd.Timedelta(days=30) * offset.n
    if name.startswith(("QS", "QE", "Q")):
        return pd.Timedelta(days=91) * offset.n
    return pd.Timedelta(days=365) * offset.n


def guess_freq(dates: pd.Series | pd.DatetimeIndex) -> str:
    """The most common step between consecutive distinct timestamps, as a pandas frequency string.

    Duplicates and gaps are ignored (the mode, not the median), so a file with one missing stretch
    still gets its real step. Monthly-ish steps (28-31 days) become "MS", 7 days "W".
    Returns "" when there are fewer than two distinct timestamps.
    """
    values = pd.DatetimeIndex(dates).dropna().unique().sort_values().as_unit("ns")
    if len(values) < 2:
        return ""
    steps = pd.Series(np.diff(values.asi8))  # nanoseconds
    step = pd.Timedelta(int(steps.mode().iloc[0]), unit="ns")
    if step == _WEEK:
        return "W"
    if pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31):
        return "MS"
    if pd.Timedelta(days=89) <= step <= pd.Timedelta(days=92):
        return "QS"
    if pd.Timedelta(days=365) <= step <= pd.Timedelta(days=366):
        return "YS"
    if step % _DAY == pd.Timedelta(0):  # pandas would write whole days as "24h"
        days = step // _DAY
        return "D" if days == 1 else f"{days}D"
    return to_offset(step).freqstr


def seasonal_period(freq: str) -> int:
    """Steps per natural season: a day for sub-daily data, a week for daily, a year for weekly/monthly."""
    if not freq:
        return 1
    step = step_of(freq)
    if step < _DAY:
        return max(1, int(round(_DAY / step)))
    if step < _WEEK:
        return 7
    if step < pd.Timedelta(days=28):
        return 52
    if step < pd.Timedelta(days=89):
        return 12
    if step < pd.Timedelta(days=365):
        return 4
    return 1


def time_features(dates: pd.DatetimeIndex, freq: str) -> np.ndarray:
    """`timeF` calendar features, each scaled to [-0.5, 0.5]; (L, F) float32.

    As in the reference's ``time_features``: sub-hourly data gets minute of hour, hour of day,
    day of week, day of month, day of year (F=5); hourly drops the minute (F=4); daily keeps
    day of week/month/year (F=3); weekly has day of month and week of year (F=2); anything
    coarser has month of year (F=1).
    """
    dates = pd.DatetimeIndex(dates)
    step = step_of(freq) if freq else pd.Timedelta(hours=1)
    minute = dates.minute.to_numpy() / 59.0 - 0.5
    hour = dates.hour.to_numpy() / 23.0 - 0.5
    weekday = dates.dayofweek.to_numpy() / 6.0 - 0.5
    month_day = (dates.day.to_numpy() - 1) / 30.0 - 0.5
    year_day = (dates.dayofyear.to_numpy() - 1) / 365.0 - 0.5
    if step < pd.Timedelta(hours=1):
        columns = [minute, hour, weekday, month_day, year_day]
    elif step < _DAY:
        columns = [hour, weekday, month_day, year_day]
    elif step < _WEEK:
        columns = [weekday, month_day, year_day]
    elif step < pd.Timedelta(days=28):
        week = (dates.isocalendar().week.to_numpy(dtype=np.float64) - 1) / 52.0 - 0.5
        columns = [month_day, week]
    else:
        columns = [(dates.month.to_numpy() - 1) / 11.0 - 0.5]
    return np.stack(columns, axis=1).astype(np.float32)  # (L, F)


def continue_dates(last: pd.Timestamp | str, freq: str, count: int) -> pd.DatetimeIndex:
    """The ``count`` timestamps after ``last`` at the step ``freq``: last + 1 step, last + 2 steps, ...

    Fixed steps (minutes, hours, days, weeks) add exact multiples, so weekly data dated on Tuesdays
    stays on Tuesdays (pandas' "W" anchors on Sundays); months, quarters and years add calendar
    months, so monthly data keeps its day of the month.
    """
    last = pd.Timestamp(last)
    offset = to_offset(freq)
    multiples = range(1, int(count) + 1)
    try:
        step = pd.Timedelta(offset.nanos, unit="ns")
    except ValueError:  # calendar offsets have no fixed length
        code = offset.rule_code.upper()
        if code.startswith("W"):
            step = _WEEK * offset.n
        else:
            months = 3 if code.startswith("Q") else 12 if code.startswith(("Y", "A")) else 1
            return pd.DatetimeIndex([last + pd.DateOffset(months=months * offset.n * k) for k in multiples])
    return pd.DatetimeIndex([last + step * k for k in multiples])
