"""``prepare_data``: the single entry point from a ``DataConfig`` to a ``ForecastData``.

Loads the series (file, generated, or delegated to M4), orders channels with the target last,
computes split borders and the few-shot cut, fits the scaler on the full train split.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from timellm_core.config import DataConfig
from timellm_core.data.csv_checks import read_series_csv
from timellm_core.data.forecast_data import ForecastData
from timellm_core.data.frequency import guess_freq, seasonal_period
from timellm_core.data.locate import find_dataset_file
from timellm_core.data.m4_windows import prepare_m4
from timellm_core.data.markers import find_sentinels, treat_sentinels_as_missing
from timellm_core.data.registry import DatasetSpec, get_dataset_spec, read_description
from timellm_core.data.splits import apply_percent, check_split_lengths, fit_scaler, split_borders
from timellm_core.data.synthetic import synthetic_frame
from timellm_core.errors import ConfigError, DataError


def prepare_data(config: DataConfig, seq_len: int, pred_len: int) -> ForecastData:
    """Load, check, split and scale the configured dataset for windows of seq_len -> pred_len."""
    config.validate()
    for name, value in (("seq_len", seq_len), ("pred_len", pred_len)):
        if int(value) < 1:
            raise ConfigError(f"{name} must be a positive integer, not {value}.")
    seq_len, pred_len = int(seq_len), int(pred_len)
    spec = get_dataset_spec(config.name)
    if spec.kind == "m4":
        return prepare_m4(config, seq_len, pred_len)

    frame, warnings, source = load_frame(spec, config.data_path, config.fill_missing)
    if config.sentinels_missing:
        found = find_sentinels(frame, [name for name in frame.columns if name != "date"])
        if found:
            frame, message = treat_sentinels_as_missing(frame, found)
            warnings.append(message)
    frame, channels, target_channels, target = _order_channels(spec, frame, config, warnings)
    freq = spec.freq or guess_freq(frame["date"])
    period = spec.period or seasonal_period(freq)

    full = split_borders(spec.split_rule, len(frame), seq_len)
    borders = apply_percent(full, seq_len, config.percent)
    check_split_lengths(borders, seq_len, pred_len, rule=spec.split_rule, rows=len(frame),
                        percent=int(config.percent))

    train_start, train_end = full["train"]  # the scaler sees the whole train split, whatever percent
    train_values = frame[channels].iloc[train_start:train_end].to_numpy(dtype="float64")
    mean, std, constant = fit_scaler(train_values)
    for index in constant.nonzero()[0]:
        name = channels[index]
        if frame[name].nunique() > 1:  # whole-file constants were already reported by the CSV check
            warnings.append(f"Channel '{name}' is constant over the train split: it is scaled with std 1.")

    return ForecastData(
        spec=spec, seq_len=seq_len, pred_len=pred_len, features=config.features, frame=frame,
        channels=channels, target_channels=target_channels, borders=borders, mean=mean, std=std,
        description=read_description(spec.name), period=int(period), target=target, freq=freq,
        percent=int(config.percent), scaler_rows=(train_start, train_end), source=source, warnings=warnings)


def channel_names(config: DataConfig) -> list[str] | None:
    """The dataset's channel names in file order (the choices of ``target``); None for M4, whose series
    have no names. Read as ``prepare_data`` reads them (the same checked, memoised read of the file)."""
    spec = get_dataset_spec(config.name)
    if spec.kind == "m4":
        return None
    if spec.kind == "synthetic" and not config.data_path:
        return [name for name in synthetic_frame().columns if name != "date"]
    path = find_dataset_file(spec, config.data_path).resolve()
    stat = path.stat()
    frame, _ = _read_cached(str(path), stat.st_mtime_ns, stat.st_size, bool(config.fill_missing))
    return [name for name in frame.columns if name != "date"]  # no copy of the memoised frame


def load_frame(spec: DatasetSpec, data_path: str | None = None,
               fill_missing: bool = False) -> tuple[pd.DataFrame, list[str], str]:
    """The checked frame of a dataset, its warnings, and where it came from (a fresh copy each call)."""
    if spec.kind == "synthetic" and not data_path:
        return synthetic_frame(), [], "generated in code (Synthetic)"
    path = find_dataset_file(spec, data_path).resolve()
    stat = path.stat()
    frame, warnings = _read_cached(str(path), stat.st_mtime_ns, stat.st_size, bool(fill_missing))
    return frame.copy(), list(warnings), str(path)


@lru_cache(maxsize=3)
def _read_cached(path: str, mtime_ns: int, size: int, fill_missing: bool) -> tuple[pd.DataFrame, tuple[str, ...]]:
    # Keyed on modification time and size, so an edited file is read again.
    frame, warnings = read_series_csv(Path(path), fill_missing=fill_missing)
    return frame, tuple(warnings)


def _order_channels(spec: DatasetSpec, frame: pd.DataFrame, config: DataConfig,
                    warnings: list[str]) -> tuple[pd.DataFrame, list[str], list[str], str]:
    """Move the target last (as the reference does) and pick input and output channels."""
    names = [name for name in frame.columns if name != "date"]
    target = config.target
    if target not in names:
        if config.features != "M" or spec.kind != "custom":
            raise DataError(f"Target column {target!r} is not in {spec.name}'s data. Columns: "
                            f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}. "
                            "Choose one with target (CLI: --target NAME).")
        target = names[-1]
        warnings.append(f"No column {config.target!r}: the last column {target!r} is used as the target.")
    ordered = [name for name in names if name != target] + [target]
    frame = frame[["date"] + ordered]
    if config.features == "S":
        return frame, [target], [target], target
    if config.features == "MS":
        return frame, ordered, [target], target
    return frame, ordered, list(ordered), target
