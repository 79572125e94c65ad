"""Split borders, the few-shot `percent` cut, window counts and the standard scaler (docs/how-it-works.md §4.2)."""

from __future__ import annotations

import math

import numpy as np

from timellm_core.errors import DataError

SPLITS = ("train", "val", "test")
_ETT_MONTH_HOURS = 30 * 24  # ETT months are 30 days: 12/4/4 months for train/val/test
_ETT_ROWS_PER_HOUR = {"ett_hour": 1, "ett_minute": 4}


def split_borders(rule: str, rows: int, seq_len: int) -> dict[str, tuple[int, int]]:
    """Half-open row ranges per split; val and test start ``seq_len`` rows early for their first input.

    ett_hour: [0, 8640) [8640 - T, 11520) [11520 - T, 14400); ett_minute: the same times 4;
    ratio: [0, int(0.7 n)) [int(0.7 n) - T, n - int(0.2 n)) [n - int(0.2 n) - T, n).
    int() truncates the floating-point product, as the reference does: int(360 * 0.7) is 251.
    Starts are clipped at 0 for series shorter than seq_len (those then fail the window check).
    """
    if rule in _ETT_ROWS_PER_HOUR:
        month = _ETT_MONTH_HOURS * _ETT_ROWS_PER_HOUR[rule]
        train_end, val_end, test_end = 12 * month, 16 * month, 20 * month
        if rows < test_end:
            raise DataError(f"The ETT split ({rule}) uses rows up to {test_end}, but the file has only {rows} rows. "
                            "Use the original ETT file, or load this file as a custom CSV (7/1/2 split).")
    elif rule == "ratio":
        train_end = int(rows * 0.7)
        test_rows = int(rows * 0.2)
        val_end = rows - test_rows
        test_end = rows
    else:
        raise DataError(f"Unknown split rule {rule!r}: expected ett_hour, ett_minute or ratio.")
    return {
        "train": (0, train_end),
        "val": (max(0, train_end - seq_len), val_end),
        "test": (max(0, val_end - seq_len), test_end),
    }


def apply_percent(borders: dict[str, tuple[int, int]], seq_len: int, percent: int) -> dict[str, tuple[int, int]]:
    """Few-shot: the train split ends at (end - T) * percent // 100 + T; val and test are unchanged."""
    start, end = borders["train"]
    shortened = dict(borders)
    shortened["train"] = (start, (end - seq_len) * int(percent) // 100 + seq_len)
    return shortened


def window_count(rows: int, seq_len: int, pred_len: int) -> int:
    """Windows in a split of ``rows`` rows: rows - T - pred_len + 1, or 0 when too short."""
    return max(0, rows - seq_len - pred_len + 1)


def min_rows_for_ratio(seq_len: int, pred_len: int) -> int:
    """The length from which every longer series has at least one window in each 7/1/2 split.

    int() truncation makes "enough rows" non-monotonic for short series, so start from a length
    that surely works (val keeps >= 0.1 n rows, test >= 0.2 n - 1, train >= 0.7 n - 1) and walk down.
    """
    def works(rows: int) -> bool:
        borders = split_borders("ratio", rows, seq_len)
        return all(window_count(end - start, seq_len, pred_len) > 0 for start, end in borders.values())

    rows = max(10 * pred_len, 5 * (pred_len + 1), math.ceil((seq_len + pred_len + 1) / 0.7)) + 1
    while rows > 1 and works(rows - 1):
        rows -= 1
    return rows


def check_split_lengths(borders: dict[str, tuple[int, int]], seq_len: int, pred_len: int, *,
                        rule: str, rows: int, percent: int = 100) -> None:
    """Raise a DataError naming the rows needed and found per split when any split has no window."""
    needed = seq_len + pred_len
    found = {split: end - start for split, (start, end) in borders.items()}
    short = [split for split in SPLITS if window_count(found[split], seq_len, pred_len) == 0]
    if not short:
        return
    listing = ", ".join(f"{split} {found[split]}" for split in SPLITS)
    message = (f"Too few rows: with seq_len {seq_len} + pred_len {pred_len} each split needs at least "
               f"{needed} rows, but found {listing} (no window in {', '.join(short)}).")
    if rule == "ratio":
        message += (f" The series has {rows} rows; its 7/1/2 split needs at least "
                    f"{min_rows_for_ratio(seq_len, pred_len)} rows for these lengths.")
    if percent < 100 and short == ["train"]:
        message += f" percent {percent} shortened the train split: raise percent."
    message += " Use a smaller seq_len or pred_len, or a longer series."
    raise DataError(message)


def fit_scaler(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel mean and population std (ddof=0, as sklearn's StandardScaler) of (L, N) values.

    A channel that is constant over these rows gets std 1 instead of 0, so scaling never divides
    by zero (it maps to 0). Returns (mean (N,), std (N,), constant mask (N,)), float64.
    """
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0, ddof=0)
    constant = np.ptp(values, axis=0) == 0
    std = np.where(constant | (std == 0), 1.0, std)
    return mean, std, constant
