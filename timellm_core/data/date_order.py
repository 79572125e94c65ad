"""Day-first or month-first: read dates like ``13/01/2021 00:00`` in one order for every row.

Left alone, pandas guesses month-first from the first row and, when a later row such as
``13/01/2021`` fails that guess, parses row by row: ``05/01`` becomes 1 May while ``13/01`` is
13 January, and the later sort by time scrambles the series. Here the order is decided from the
rows only one order can read (a first number above 12 is a day; a second number above 12 is a
day), and every row is parsed with that order.
"""

from __future__ import annotations

import re
import warnings as py_warnings

import numpy as np
import pandas as pd

from timellm_core.errors import DataError

# "13/01/2021", "1.2.21 07:00", "01-13-2021T00:00": two numbers of 1-2 digits, then the year.
_NUMERIC_DATE = re.compile(r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?![\d])")


def numeric_date_parts(text: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """The first and second numbers of every cell when all cells are written `A/B/year ...`; else None."""
    if not text.iloc[:5].astype(str).str.match(_NUMERIC_DATE).all():
        return None  # ISO dates and the like: decided on the first rows, without scanning the file
    parts = text.astype(str).str.extract(_NUMERIC_DATE)
    if parts.empty or parts[0].isna().any():
        return None
    return parts[0].astype(int).to_numpy(), parts[2].astype(int).to_numpy()


def day_first_order(label: str, column: pd.Series, lines: np.ndarray) -> tuple[bool | None, str | None]:
    """(dayfirst, warning) for a date column; dayfirst None when the dates are not written `A/B/year`.

    A DataError when some rows can only be day-first and others only month-first.
    """
    text = column.where(column.notna(), "")
    parts = numeric_date_parts(text)
    if parts is None:
        return None, None
    first, second = parts
    day_first_rows = np.flatnonzero(first > 12)
    month_first_rows = np.flatnonzero(second > 12)
    if day_first_rows.size and month_first_rows.size:
        a, b = day_first_rows[0], month_first_rows[0]
        raise DataError(
            f"{label}: the date column '{column.name}' mixes day-first and month-first dates: line {lines[a]} "
            f"({str(column.iloc[a]).strip()!r}) can only be day/month, line {lines[b]} "
            f"({str(column.iloc[b]).strip()!r}) only month/day. Write every date in one order (best: "
            "YYYY-MM-DD hh:mm).")
    if day_first_rows.size:
        a = day_first_rows[0]
        return True, (f"Dates in '{column.name}' are written day/month/year (line {lines[a]}: "
                      f"{str(column.iloc[a]).strip()!r}): every date was read day-first.")
    if month_first_rows.size:
        return False, None
    # No row decides: prefer the order that keeps the file in time order, else month-first (pandas' own).
    increasing = {order: _parse(text, order).is_monotonic_increasing for order in (False, True)}
    dayfirst = increasing[True] and not increasing[False]
    return dayfirst, (f"Every date in '{column.name}' can be read day-first or month-first (no number above 12): "
                      f"read {'day' if dayfirst else 'month'}-first"
                      + (", the order that keeps the rows in time order." if increasing[dayfirst] else ".")
                      + " Write dates as YYYY-MM-DD to leave no doubt.")


def _parse(text: pd.Series, dayfirst: bool) -> pd.Series:
    with py_warnings.catch_warnings():
        py_warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(text, dayfirst=dayfirst)  # one inferred format: fast
        except (ValueError, TypeError, OverflowError):
            return pd.to_datetime(text, dayfirst=dayfirst, format="mixed", errors="coerce")


def parse_in_order(text: pd.Series, dayfirst: bool) -> pd.Series:
    """Every cell parsed with the same day/month order (NaT where a cell is not a date)."""
    return _parse(text, dayfirst)
