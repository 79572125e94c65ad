"""The input of a forecast past the end of a series: the rows before the forecast origin, checked against a run's data.

A trained run knows one dataset: its channels, its step and the scaler fitted on its train split.
Another file can feed that run only when it has the same channels at the same step; it is read and
checked like any upload (``csv_checks``), then each mismatch is a ``DataError`` naming what differs.
The forecast origin is the end of the file, or an earlier cut-off (a row count or a timestamp), so
that the rows after it can serve as the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from timellm_core.data.csv_checks import read_series_csv
from timellm_core.data.csv_reading import CsvSource, open_source
from timellm_core.data.forecast_data import ForecastData
from timellm_core.data.frequency import guess_freq, step_of
from timellm_core.data.markers import find_sentinels, treat_sentinels_as_missing
from timellm_core.errors import DataError

M4_DECLINED = ("An M4 run cannot forecast past the end of a file: M4 series have no dates and each is its own "
               "series. Its test horizons are on the Forecast page and in `evaluate`.")
Cutoff = int | str | pd.Timestamp | None  # rows before the forecast, or the last timestamp before it


@dataclass
class FutureInput:
    """A series ready to forecast from: its rows in the run's channel order and where the forecast starts."""

    frame: pd.DataFrame  # 'date' + the run's input channels (model order, target last), original units
    origin: int  # rows before the forecast: the context is rows [origin - seq_len, origin)
    source: str  # where the rows came from, in a sentence: "the file /x/y.csv", "the run's dataset (ETTh1)"
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.frame)


def future_input(data: ForecastData, source: CsvSource | None = None, cutoff: Cutoff = None,
                 fill_missing: bool = False, sentinels_missing: bool = False) -> FutureInput:
    """The run's own dataset (``source`` None) or a CSV with the same channels, and the forecast origin.

    ``fill_missing`` and ``sentinels_missing`` treat the file as the run's data was treated (its
    ``DataConfig``). Mismatches (other channels, another step) and too few rows are DataErrors.
    """
    if getattr(getattr(data, "spec", None), "kind", None) == "m4" or not isinstance(data, ForecastData):
        raise DataError(M4_DECLINED)
    if not data.freq:
        raise DataError(f"The step of {data.spec.name} is unknown (fewer than two distinct timestamps), so the "
                        "forecast's timestamps cannot be continued.")
    if source is None:
        frame, label, warnings = data.frame, f"the run's dataset ({data.spec.name})", []
    else:
        frame, label, warnings = _read_other(data, source, fill_missing, sentinels_missing)
    frame = frame[["date", *data.channels]].reset_index(drop=True)
    origin = forecast_origin(frame, data.seq_len, cutoff, label)
    return FutureInput(frame=frame, origin=origin, source=_lower(label), warnings=warnings)


def _read_other(data: ForecastData, source: CsvSource, fill_missing: bool,
                sentinels_missing: bool) -> tuple[pd.DataFrame, str, list[str]]:
    label = open_source(source)[0]
    if hasattr(source, "seek"):
        source.seek(0)  # open_source read the upload; read_series_csv reads it again
    frame, warnings = read_series_csv(source, fill_missing=fill_missing)
    check_same_channels(frame, data, label)
    if sentinels_missing:  # as prepare_data does for the run's own file
        found = find_sentinels(frame, [name for name in frame.columns if name != "date"])
        if found:
            frame, message = treat_sentinels_as_missing(frame, found)
            warnings.append(message)
    check_same_step(frame, data, label)
    return frame, label, list(warnings)


def run_channel_names(data: ForecastData) -> list[str]:
    """Every channel of the run's dataset file (for features S and MS, more than the model's inputs)."""
    return [name for name in data.frame.columns if name != "date"]


def check_same_channels(frame: pd.DataFrame, data: ForecastData, label: str = "The file") -> None:
    """The file's channels must be the run's dataset's channels (any order); else name the missing and extra ones."""
    expected = run_channel_names(data)
    found = [name for name in frame.columns if name != "date"]
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    if not missing and not extra:
        return
    parts = []
    if missing:
        parts.append(f"missing {_names(missing)}")
    if extra:
        parts.append(f"extra {_names(extra)}")
    raise DataError(f"{label} has other channels than the run's data ({data.spec.name}): {'; '.join(parts)}. "
                    f"The run was trained on {len(expected)} channel(s): {_names(expected)}. Give a file with "
                    "exactly these columns (besides the date), in any order.")


def check_same_step(frame: pd.DataFrame, data: ForecastData, label: str = "The file") -> None:
    """The file's step (guessed from its timestamps) must be the run's; else name both."""
    theirs = guess_freq(frame["date"])
    if not theirs:
        raise DataError(f"{label} has fewer than two distinct timestamps, so its step cannot be told: the run's "
                        f"data steps every {data.freq}.")
    if not data.freq or step_of(theirs) != step_of(data.freq):
        raise DataError(f"{label} has another frequency than the run's data: the run's data ({data.spec.name}) "
                        f"steps every {data.freq or 'unknown'}, the file every {theirs}. Resample the file to "
                        f"{data.freq or 'the run’s step'} or use a run trained at its step.")


def forecast_origin(frame: pd.DataFrame, seq_len: int, cutoff: Cutoff = None, label: str = "The file") -> int:
    """Rows before the forecast: all of them, ``cutoff`` rows, or those dated at or before ``cutoff``.

    The context needs ``seq_len`` rows before the origin; fewer is a DataError saying how many.
    """
    rows = len(frame)
    if cutoff is None or (isinstance(cutoff, str) and not cutoff.strip()):
        origin, where = rows, "rows"
    else:
        origin, where = _cutoff_rows(frame, cutoff, label), "rows before the cut-off"
    if origin < seq_len:
        raise DataError(f"Too few rows: the forecast needs seq_len {seq_len} rows of context, but {_lower(label)} "
                        f"has {origin} {where}. Give a longer file" + (" or a later cut-off." if where != "rows" else "."))
    return origin


def _cutoff_rows(frame: pd.DataFrame, cutoff: Any, label: str) -> int:
    rows = len(frame)
    if isinstance(cutoff, str) and cutoff.strip().lstrip("-").isdigit():
        cutoff = int(cutoff)
    if isinstance(cutoff, int) and not isinstance(cutoff, bool):
        if not 1 <= cutoff <= rows:
            raise DataError(f"The cut-off must be a row count from 1 to {rows} (the rows of {_lower(label)}), "
                            f"not {cutoff}.")
        return cutoff
    try:
        moment = pd.Timestamp(cutoff)
    except (ValueError, TypeError):
        raise DataError(f"The cut-off {cutoff!r} is neither a row count nor a timestamp "
                        "(for example 500 or 2018-01-31 23:00).") from None
    if moment.tzinfo is not None:
        moment = moment.tz_convert(None)
    first, last = frame["date"].iloc[0], frame["date"].iloc[-1]
    if moment < first or moment > last:
        raise DataError(f"The cut-off {moment} is outside {_lower(label)}, which runs from {first} to {last}.")
    return int((frame["date"] <= moment).sum())


def _lower(label: str) -> str:
    return label[0].lower() + label[1:] if label.startswith("The ") else label


def _names(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
