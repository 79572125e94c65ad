"""Values and names that are not what they look like: sentinel numbers such as -9999 standing for "no
measurement", and channel names whose unit symbols were lost to U+FFFD replacement characters.

Weather, as distributed, holds both: -9999 in two wind-speed channels (a flat line with spikes to
-10,000 once drawn, and a scaler thrown off by them), and "SWDR (W/m\ufffd)" where "W/m²" was. Sentinels
are found and reported always, and treated as missing (filled forward, like empty cells) only when
asked (``DataConfig.sentinels_missing``), because a value is data until a person says otherwise.
Names are repaired for display only: the channel keeps its name in the file, in runs and in prompts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

SENTINEL_VALUES = (-9999.0, -99999.0, -999.0, 9999.0, 99999.0)
FAR = 3.0  # a sentinel lies beyond the channel's other values by more than this many times their range
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class Sentinel:
    """One channel's sentinel: the value, how many rows hold it, and the first row (0-based)."""

    channel: str
    value: float
    count: int
    first_row: int


def find_sentinels(frame: pd.DataFrame, channels: list[str]) -> list[Sentinel]:
    """Sentinel values in ``channels``: one of ``SENTINEL_VALUES``, far outside the channel's other values."""
    found = []
    for name in channels:
        values = frame[name].to_numpy(dtype=np.float64)
        for marker in SENTINEL_VALUES:
            hits = values == marker
            if not hits.any():
                continue
            rest = values[~hits & np.isfinite(values)]
            if rest.size == 0:
                continue
            span = max(float(np.ptp(rest)), 1.0)
            rare = hits.sum() < 0.5 * values.size  # a value on most rows is the channel itself
            if rare and (marker < rest.min() - FAR * span or marker > rest.max() + FAR * span):
                found.append(Sentinel(name, marker, int(hits.sum()), int(np.flatnonzero(hits)[0])))
    return found


def describe_sentinels(found: list[Sentinel]) -> str:
    """"-9999 in 'wv (m/s)' (40 rows, first at row 1,234) and ..." for a message."""
    parts = [f"{s.value:g} in '{repaired_name(s.channel)}' ({s.count:,} row{'s' if s.count != 1 else ''}, first at row "
             f"{s.first_row + 1:,})" for s in found[:6]]
    more = f" and {len(found) - 6} more" if len(found) > 6 else ""
    return "; ".join(parts) + more


def treat_sentinels_as_missing(frame: pd.DataFrame, found: list[Sentinel]) -> tuple[pd.DataFrame, str]:
    """A copy of ``frame`` with the sentinels filled forward (leading ones backward), and what was done."""
    frame = frame.copy()
    for sentinel in found:
        column = frame[sentinel.channel].mask(frame[sentinel.channel] == sentinel.value)
        frame[sentinel.channel] = column.ffill().bfill()
    total = sum(s.count for s in found)
    return frame, (f"Treated {total:,} sentinel value(s) as missing and filled them forward: "
                   f"{describe_sentinels(found)}.")


_REPAIRS = ((re.compile(REPLACEMENT + r"(?=mol)"), "µ"),  # µmol
            (re.compile(r"(?<=m)" + REPLACEMENT), "²"))  # W/m², m²/s


def repaired_name(name: str) -> str:
    """A channel name with the unit symbols a lossy encoding replaced by U+FFFD put back (µ, ²)."""
    for pattern, symbol in _REPAIRS:
        name = pattern.sub(symbol, name)
    return name


def damaged_names(channels: list[str]) -> dict[str, str]:
    """{name in the file: name shown} for the channels that carry replacement characters."""
    return {name: repaired_name(name) for name in channels if REPLACEMENT in name}
