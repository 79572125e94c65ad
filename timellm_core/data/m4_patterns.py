"""The six M4 seasonal patterns: the competition's settings, the protocol's lengths and the file locations.

The smallest piece of the M4 support: the data locator (downloads), the reader (``m4.py``) and the
windows (``m4_windows.py``) all build on it, and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from timellm_core.errors import ConfigError

_RAW_BASE = "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/"


@dataclass(frozen=True)
class M4Pattern:
    """Facts of one M4 seasonal pattern (the competition's own settings)."""

    name: str  # Yearly, Quarterly, Monthly, Weekly, Daily, Hourly
    horizon: int  # forecast steps asked by the competition
    frequency: int  # seasonal period m used by MASE and Naive2
    history_size: float  # training windows end within the last history_size * horizon points
    series_count: int  # series in the competition
    id_prefix: str  # ids are <prefix>1 .. <prefix><series_count>

    @property
    def train_file(self) -> str:
        return f"{self.name}-train.csv"

    @property
    def test_file(self) -> str:
        return f"{self.name}-test.csv"

    @property
    def seq_len(self) -> int:
        """Input length of the reference protocol: two horizons."""
        return 2 * self.horizon

    @property
    def window_limit(self) -> int:
        """How far back from a series' end a training window may end (int(history_size * horizon))."""
        return int(self.history_size * self.horizon)


# history_size as in the reference M4 loader (N-BEATS' settings): 1.5 horizons of history for the
# long, low-frequency patterns, 10 horizons for the short, high-frequency ones.
M4_PATTERNS: dict[str, M4Pattern] = {p.name: p for p in (
    M4Pattern("Yearly", 6, 1, 1.5, 23000, "Y"),
    M4Pattern("Quarterly", 8, 4, 1.5, 24000, "Q"),
    M4Pattern("Monthly", 18, 12, 1.5, 48000, "M"),
    M4Pattern("Weekly", 13, 1, 10.0, 359, "W"),
    M4Pattern("Daily", 14, 1, 10.0, 4227, "D"),
    M4Pattern("Hourly", 48, 24, 10.0, 414, "H"),
)}

# Size and sha256 of the canonical files where the project has checked a copy (shared README).
_KNOWN_FILES: dict[str, tuple[int, str]] = {
    "Hourly-train.csv": (2347115, "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f"),
    "Hourly-test.csv": (132820, "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42"),
    "Weekly-train.csv": (4015067, "d478d3f6ed673e6ed3c2cb0fbed5425f72eedd51318ebebeb0b5ecfcefc37714"),
    "Weekly-test.csv": (44247, "3b2bc4be8e636e802260dcd843ca3c5da40536a1fbe1ecb3229a97dae4f44688"),
}


def m4_pattern(name: str | None) -> M4Pattern:
    """The pattern called ``name`` (case-insensitive); a clear ConfigError when missing or unknown."""
    choices = ", ".join(M4_PATTERNS)
    if name is None or not str(name).strip():
        raise ConfigError(f"M4 needs a seasonal pattern: pass --seasonal_patterns with one of {choices}.")
    for pattern in M4_PATTERNS.values():
        if pattern.name.lower() == str(name).strip().lower():
            return pattern
    raise ConfigError(f"Unknown M4 seasonal pattern {name!r}: choose one of {choices}.")


def m4_fetch_targets(pattern: str) -> list[tuple[str, str, int | None, str | None]]:
    """(url, relative path, size or None, sha256 or None) of the train and test file of a pattern."""
    chosen = m4_pattern(pattern)
    targets = []
    for remote_folder, file_name in (("Train", chosen.train_file), ("Test", chosen.test_file)):
        size, sha256 = _KNOWN_FILES.get(file_name, (None, None))
        targets.append((f"{_RAW_BASE}{remote_folder}/{file_name}", f"m4/{file_name}", size, sha256))
    return targets


def check_m4_lengths(pattern: M4Pattern, seq_len: int | None, pred_len: int | None) -> tuple[int, int]:
    """The protocol's (seq_len, pred_len) = (2 * horizon, horizon); None means "use it".

    Other values are a ConfigError rather than a silent override: the model is built with the
    lengths the user gave, so overriding them here would only move the failure elsewhere.
    """
    wanted = (pattern.seq_len, pattern.horizon)
    given = (wanted[0] if seq_len is None else int(seq_len), wanted[1] if pred_len is None else int(pred_len))
    if given != wanted:
        raise ConfigError(
            f"M4 {pattern.name} uses seq_len {wanted[0]} and pred_len {wanted[1]} (pred_len = the horizon, "
            f"seq_len = 2 x horizon), but seq_len {given[0]} and pred_len {given[1]} were given: "
            f"pass --seq_len {wanted[0]} --pred_len {wanted[1]}.")
    return given
