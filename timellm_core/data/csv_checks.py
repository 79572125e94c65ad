"""Reading and checking a time-series CSV: the registry files, `data check`, and the app's upload.

Each problem a person can fix becomes a ``DataError`` that names the column, the line of the
file (line 1 is the header) and the value; problems the loader can work around (unsorted or
duplicated timestamps, gaps, constant channels, filled NaNs) become warning strings.
"""

from __future__ import annotations

import os
import warnings as py_warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from timellm_core.data.csv_reading import CsvSource, candidate_encodings, open_source, parse_csv, read_head, sniff_separator
from timellm_core.data.date_order import day_first_order, parse_in_order
from timellm_core.data.frequency import guess_freq, seasonal_period, step_of
from timellm_core.data.splits import SPLITS, check_split_lengths, split_borders, window_count
from timellm_core.errors import DataError
from timellm_core.safety import MAX_UPLOAD_BYTES

MAX_CSV_BYTES = MAX_UPLOAD_BYTES  # 200 MB, as the app's upload limit; Traffic, the largest benchmark, is ~136 MB
MIN_ROWS = 2
FLOAT32_MAX = float(np.finfo(np.float32).max)
DATE_COLUMN_NAMES = ("date", "time", "timestamp", "datetime")
# Text that stands for "no value" (pandas' own list): read as missing, and counted as such in every message.
MISSING_MARKERS = frozenset({"#n/a", "#n/a n/a", "#na", "-1.#ind", "-1.#qnan", "-nan", "1.#ind", "1.#qnan", "<na>",
                             "n/a", "na", "null", "nan", "none"})
_FILL_HINT = ("Fix the file, or fill them forward (fill_missing=True; CLI --fill_missing; "
              "the app's fill-missing option).")

@dataclass
class _ReadResult:
    frame: pd.DataFrame  # 'date' + float64 channels, sorted by time
    warnings: list[str]
    encoding: str
    separator: str


def read_series_csv(source: CsvSource, fill_missing: bool = False,
                    max_bytes: int = MAX_CSV_BYTES) -> tuple[pd.DataFrame, list[str]]:
    """Read and check a CSV: a frame with a 'date' column then numeric channels, plus warnings.

    ``source`` is a path, the file's bytes, or a binary file object (an upload). Encodings:
    UTF-8, UTF-8 with BOM, UTF-16 (by BOM), GBK; separators: comma, semicolon, tab (sniffed).
    Timestamps with a UTC offset are converted to UTC and stored without a zone.
    """
    result = _read(source, fill_missing, max_bytes)
    return result.frame, result.warnings


def _read(source: CsvSource, fill_missing: bool, max_bytes: int) -> _ReadResult:
    label, payload, size = open_source(source)
    if size > max_bytes:
        raise DataError(f"{label} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:g} MB limit for a CSV. "
                        "Use a shorter or narrower file (fewer rows or channels).")
    head = read_head(payload)
    if not head.strip():
        raise DataError(f"{label} is empty: expected a header line (date, channels...) and data rows.")
    encodings = candidate_encodings(head)
    separator, decimal = sniff_separator(head, encodings[0])
    raw, encoding = parse_csv(label, payload, encodings, separator, decimal)
    messages: list[str] = []
    if encoding == "gbk":
        messages.append(f"{label} is not UTF-8: it was read as GBK.")
    frame = _check_frame(label, raw, fill_missing, messages)
    return _ReadResult(frame, messages, encoding, separator)


def _check_frame(label: str, raw: pd.DataFrame, fill_missing: bool, messages: list[str]) -> pd.DataFrame:
    raw.columns = [str(name).strip() for name in raw.columns]
    empty_extra = [name for name in raw.columns if name.startswith("Unnamed:") and raw[name].isna().all()]
    if empty_extra:  # trailing separators, as spreadsheets often write
        raw = raw.drop(columns=empty_extra)
        messages.append(f"Dropped {len(empty_extra)} empty unnamed column(s) (trailing separators).")
    if raw.shape[1] < 2:
        raise DataError(f"{label} has {raw.shape[1]} column(s): expected a date column and at least one "
                        "numeric channel, separated by ',', ';' or tab.")
    names = list(raw.columns)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # refused: reading `a,a` as `a`, `a.1` would train on a name the file never wrote
        where = "; ".join(f"{name!r} in columns " + ", ".join(str(i + 1) for i, n in enumerate(names) if n == name)
                          for name in repeated[:5])
        raise DataError(f"{label} repeats column name(s): {where}. Give every column its own name in the "
                        "header line.")
    if len(raw) < MIN_ROWS:
        raise DataError(f"{label} has {len(raw)} data row(s): a series needs at least {MIN_ROWS} rows, and "
                        "training needs seq_len + pred_len rows in each of the train, val and test splits.")
    date_name = _find_date_column(raw)
    if date_name is None:
        raise DataError(f"{label} has no date column: name one 'date' (or time, timestamp, datetime), or put "
                        f"the timestamps in the first column. Columns found: {_names(list(raw.columns))}.")
    lines = np.arange(len(raw)) + 2  # file line of each row; line 1 is the header
    dates = _parse_dates(label, raw[date_name], lines, messages)
    channel_names = [name for name in raw.columns if name != date_name]
    values, markers = _numeric_channels(label, raw, channel_names, lines)  # (L, N) float64
    _check_infinite(label, values, channel_names, lines)
    values = _handle_missing(label, values, channel_names, lines, fill_missing, messages, markers)
    for index in np.flatnonzero(np.ptp(values, axis=0) == 0):
        messages.append(f"Channel '{channel_names[index]}' is constant ({values[0, index]:g}): it is scaled "
                        "with std 1 instead of 0 and stays at 0 after scaling.")
    dates, values, lines = _sort_by_time(dates, values, lines, messages)
    _warn_gaps(dates, messages)
    frame = pd.DataFrame(values, columns=channel_names)
    frame.insert(0, "date", dates)
    return frame


def _find_date_column(raw: pd.DataFrame) -> str | None:
    for name in raw.columns:
        if name.lower() in DATE_COLUMN_NAMES:
            return name
    first = raw.columns[0]
    column = raw[first]
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return None  # numbers would parse as nanoseconds since 1970
    sample = column.dropna().iloc[:200]  # enough to decide, cheap on long files
    if sample.empty:
        return None
    with py_warnings.catch_warnings():
        py_warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(sample, format="mixed", errors="coerce", utc=True)
        except (ValueError, TypeError, OverflowError):
            return None
    return first if parsed.notna().mean() >= 0.5 else None


def _parse_dates(label: str, column: pd.Series, lines: np.ndarray, messages: list[str]) -> pd.Series:
    text = column.astype(str).where(column.notna()) if pd.api.types.is_numeric_dtype(column) else column
    dayfirst, order_note = day_first_order(label, column, lines)
    if order_note:
        messages.append(order_note)
    with py_warnings.catch_warnings():
        py_warnings.simplefilter("ignore")
        try:
            if dayfirst is not None:  # `A/B/year`: one day/month order for every row
                parsed = parse_in_order(text, dayfirst)
            else:
                parsed = pd.to_datetime(text)  # one inferred format: fast
            if parsed.dt.tz is not None:
                parsed = parsed.dt.tz_convert(None)
        except (ValueError, TypeError, OverflowError, AttributeError):
            parsed = pd.to_datetime(text, format="mixed", errors="coerce", utc=True).dt.tz_convert(None)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        shown = ", ".join(f"line {lines[i]} ({'empty' if pd.isna(column.iloc[i]) else repr(str(column.iloc[i]))})"
                          for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise DataError(f"{label}: the date column '{column.name}' has {bad.size} cell(s) that are empty or not "
                        f"dates: {shown}{more}. Fix or remove those rows.")
    return parsed.reset_index(drop=True).astype("datetime64[ns]")


def _numeric_channels(label: str, raw: pd.DataFrame, names: list[str],
                      lines: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The channels as float64 (missing cells NaN), and where text markers such as "n/a" stood for missing."""
    values = np.empty((len(raw), len(names)), dtype=np.float64)
    problems: list[str] = []
    markers: list[str] = []
    for index, name in enumerate(names):
        column = raw[name]
        if pd.api.types.is_bool_dtype(column):
            problems.append(f"column '{name}' holds true/false values (line {lines[0]}: {str(column.iloc[0])!r})")
            continue
        if pd.api.types.is_numeric_dtype(column):
            values[:, index] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            continue
        text = column.astype(str).str.strip()
        marked = text.str.lower().isin(MISSING_MARKERS) & column.notna()
        converted = pd.to_numeric(column.where(~marked), errors="coerce")
        bad = np.flatnonzero((converted.isna() & column.notna() & (text != "") & ~marked).to_numpy())
        where = np.flatnonzero(marked.to_numpy())
        if where.size:
            markers.append(f"column '{name}': {where.size} cell(s) such as {str(column.iloc[where[0]]).strip()!r} "
                           f"(line {lines[where[0]]})")
        if bad.size:
            first = bad[0]
            problems.append(f"column '{name}' is not numeric: line {lines[first]} holds "
                            f"{str(column.iloc[first])!r} ({bad.size} such cell(s))")
            continue
        values[:, index] = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    if problems:
        marker_note = f" Also read as missing values: {'; '.join(markers[:5])}." if markers else ""
        raise DataError(f"{label}: " + "; ".join(problems[:5])
                        + (f"; and {len(problems) - 5} more column(s)" if len(problems) > 5 else "")
                        + ". Every column except the date must hold numbers: fix those cells or remove the column."
                        + marker_note)
    return values, markers


def _cells(mask: np.ndarray, names: list[str], lines: np.ndarray) -> str:
    """'column 'a' at lines 3, 9; column 'b' at line 4' for the first few columns and lines."""
    parts = []
    columns = np.flatnonzero(mask.any(axis=0))
    for index in columns[:5]:
        rows = np.flatnonzero(mask[:, index])
        shown = ", ".join(str(lines[row]) for row in rows[:5])
        more = f" and {rows.size - 5} more" if rows.size > 5 else ""
        parts.append(f"column '{names[index]}' at line{'s' if rows.size > 1 else ''} {shown}{more}")
    if columns.size > 5:
        parts.append(f"and {columns.size - 5} more column(s)")
    return "; ".join(parts)


def _check_infinite(label: str, values: np.ndarray, names: list[str], lines: np.ndarray) -> None:
    infinite = np.isinf(values)
    if infinite.any():
        raise DataError(f"{label}: {int(infinite.sum())} infinite value(s): {_cells(infinite, names, lines)}. "
                        "Infinite values are never filled: replace them in the file.")
    # Finite in float64 but infinite once the model reads it as float32 (|x| > 3.4e38).
    too_large = np.abs(np.nan_to_num(values)) > FLOAT32_MAX
    if too_large.any():
        first = np.argwhere(too_large)[0]
        raise DataError(f"{label}: {int(too_large.sum())} value(s) too large for float32, the precision the model "
                        f"computes in (largest magnitude {FLOAT32_MAX:.3g}): {_cells(too_large, names, lines)}, "
                        f"e.g. {values[first[0], first[1]]:g}. Rescale that column (other units) or fix the cells.")


def _handle_missing(label: str, values: np.ndarray, names: list[str], lines: np.ndarray,
                    fill_missing: bool, messages: list[str], markers: list[str] | None = None) -> np.ndarray:
    missing = np.isnan(values)
    if not missing.any():
        return values
    kinds = "NaN or empty cells" + (f", and text marking a missing value ({'; '.join(markers[:5])})"
                                    if markers else "")
    empty = [names[i] for i in np.flatnonzero(missing.all(axis=0))]
    if empty:
        raise DataError(f"{label}: column(s) {_names(empty)} hold no values at all: remove them.")
    if not fill_missing:
        raise DataError(f"{label}: {int(missing.sum())} missing value(s) ({kinds}): "
                        f"{_cells(missing, names, lines)}. {_FILL_HINT}")
    # In file order: each gap takes the last value before it; a leading gap takes the first value after.
    filled = pd.DataFrame(values).ffill().bfill().to_numpy()
    messages.append(f"Filled {int(missing.sum())} missing value(s) ({kinds}) forward (leading ones backward): "
                    f"{_cells(missing, names, lines)}.")
    return filled


def _sort_by_time(dates: pd.Series, values: np.ndarray, lines: np.ndarray,
                  messages: list[str]) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    stamps = dates.to_numpy()
    if not dates.is_monotonic_increasing:
        first_back = lines[int(np.flatnonzero(np.diff(stamps) < np.timedelta64(0))[0]) + 1]
        order = np.argsort(stamps, kind="stable")  # rows with equal times keep their file order
        stamps, values, lines = stamps[order], values[order], lines[order]
        messages.append(f"Timestamps are not in increasing order (first step back at line {first_back}): "
                        "rows were sorted by time (stable sort).")
    dates = pd.Series(stamps, name="date")
    duplicated = dates.duplicated().to_numpy()
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        messages.append(f"{int(duplicated.sum())} duplicated timestamp(s), first {dates.iloc[first]} "
                        f"(line {lines[first]}): all rows were kept.")
    return dates, values, lines


def _warn_gaps(dates: pd.Series, messages: list[str]) -> None:
    freq = guess_freq(dates)
    if not freq:
        return
    step = step_of(freq)
    if step >= pd.Timedelta(days=28):
        return  # calendar months and years have no fixed length
    steps = np.diff(dates.to_numpy())
    gaps = np.flatnonzero(steps > step.to_timedelta64())
    if gaps.size:
        largest = gaps[np.argmax(steps[gaps])]
        messages.append(f"{gaps.size} gap(s) longer than the usual step of {freq} (largest: "
                        f"{_duration(pd.Timedelta(steps[largest]))} after {dates.iloc[largest]}); windows span them as if "
                        "the rows were consecutive.")


def _duration(delta: pd.Timedelta) -> str:
    """'1h40min', '3d', '45s'."""
    seconds = int(delta.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{value}{unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")) if value]
    return "".join(parts) or "0s"


def _names(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class CheckReport:
    """What `data check` and the app's upload show about a CSV."""

    source: str
    rows: int
    channels: list[str]
    start: str  # first timestamp, ISO format
    end: str
    freq: str  # guessed step ("h", "15min", ...); "" when unknown
    period: int  # seasonal period for that step
    encoding: str
    separator: str
    warnings: list[str] = field(default_factory=list)
    seq_len: int | None = None
    pred_len: int | None = None
    borders: dict[str, tuple[int, int]] | None = None  # 7/1/2 split, when lengths were given
    windows: dict[str, int] | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """A few lines of plain text for the terminal."""
        separator = {"\t": "tab"}.get(self.separator, repr(self.separator))
        lines = [f"{self.source}: OK",
                 f"rows      {self.rows} ({self.start} .. {self.end})",
                 f"channels  {len(self.channels)}: {', '.join(self.channels[:10])}"
                 + (f", ... ({len(self.channels) - 10} more)" if len(self.channels) > 10 else ""),
                 f"freq      {self.freq or 'unknown'} (seasonal period {self.period})",
                 f"format    {self.encoding}, separator {separator}"]
        if self.windows is not None and self.borders is not None:
            lines.append(f"windows   seq_len {self.seq_len}, pred_len {self.pred_len}, 7/1/2 split:")
            for split in SPLITS:
                start, end = self.borders[split]
                lines.append(f"  {split:<5}   rows [{start}, {end})  windows {self.windows[split]}")
        lines += [f"warning   {message}" for message in self.warnings]
        return "\n".join(lines)


def check_csv(path: CsvSource, seq_len: int | None = None, pred_len: int | None = None,
              fill_missing: bool = False) -> CheckReport:
    """Read a CSV as ``read_series_csv`` does and report it; with lengths, check every split has windows.

    The split is the generic 7/1/2 rule used for custom files; too few rows in any split is a
    DataError stating the rows needed and found per split.
    """
    if (seq_len is None) != (pred_len is None):
        raise DataError("Give both seq_len and pred_len to count windows, or neither.")
    result = _read(path, fill_missing, MAX_CSV_BYTES)
    frame = result.frame
    freq = guess_freq(frame["date"])
    report = CheckReport(
        source=str(path) if isinstance(path, (str, os.PathLike)) else "uploaded CSV",
        rows=len(frame), channels=[name for name in frame.columns if name != "date"],
        start=str(frame["date"].iloc[0]), end=str(frame["date"].iloc[-1]), freq=freq,
        period=seasonal_period(freq), encoding=result.encoding, separator=result.separator,
        warnings=result.warnings)
    if seq_len is not None and pred_len is not None:
        if seq_len < 1 or pred_len < 1:
            raise DataError(f"seq_len and pred_len must be positive, not {seq_len} and {pred_len}.")
        borders = split_borders("ratio", len(frame), seq_len)
        check_split_lengths(borders, seq_len, pred_len, rule="ratio", rows=len(frame))
        report.seq_len, report.pred_len, report.borders = seq_len, pred_len, borders
        report.windows = {split: window_count(end - start, seq_len, pred_len) for split, (start, end) in borders.items()}
    return report
