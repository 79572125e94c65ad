"""M4 competition data: the six seasonal patterns, their files, reading them, and describing them.

The files keep the original competition layout: a header row, then one row per series with
the id in the first column and the values left-aligned, empty cells after a series ends.
``<Pattern>-train.csv`` holds each series' history, ``<Pattern>-test.csv`` its next
``horizon`` values. Files are looked up under ``dataset/m4/`` first, then ``$TIMELLM_DATA/m4/``.

The training protocol (windows, splits, metrics) lives in ``m4_windows.py``; ``prepare_m4``
and ``describe_m4`` here are the two entry points the data layer calls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from timellm_core.errors import ConfigError, DataError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTIONS_DIR = PROJECT_ROOT / "dataset" / "descriptions"
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


def _candidate_paths(relative_path: str, data_path: str | None) -> list[Path]:
    """Where a file may be: an explicit folder, then dataset/, then $TIMELLM_DATA (the project's order)."""
    name = Path(relative_path).name
    candidates = []
    if data_path:
        given = Path(data_path).expanduser()
        # A folder holding the files, or one of the pattern's files (its sibling is then next to it).
        candidates.append(given / name if given.is_dir() or not given.suffix else given.parent / name)
    try:  # the data layer's lookup, so every dataset is searched the same way
        from timellm_core.data.locate import candidate_paths
    except ImportError:
        candidates.append(PROJECT_ROOT / "dataset" / relative_path)
        if os.environ.get("TIMELLM_DATA"):
            candidates.append(Path(os.environ["TIMELLM_DATA"]).expanduser() / relative_path)
    else:
        candidates.extend(candidate_paths(relative_path))
    return candidates


def find_m4_file(pattern: str, part: str, data_path: str | None = None) -> Path | None:
    """The ``train`` or ``test`` file of a pattern, or None when it is nowhere to be found."""
    chosen = m4_pattern(pattern)
    relative = f"m4/{chosen.train_file if part == 'train' else chosen.test_file}"
    for candidate in _candidate_paths(relative, data_path):
        if candidate.is_file():
            return candidate
    return None


def _missing_file_error(pattern: M4Pattern, part: str, data_path: str | None) -> DataError:
    file_name = pattern.train_file if part == "train" else pattern.test_file
    looked = ", ".join(str(path) for path in _candidate_paths(f"m4/{file_name}", data_path))
    return DataError(
        f"The M4 {pattern.name} {part} file {file_name} was not found (looked in: {looked}). "
        f"Download it with `python -m timellm_core data fetch m4 --seasonal_patterns {pattern.name}` "
        "on a machine with internet access, or copy it into dataset/m4/ or $TIMELLM_DATA/m4/.")


_ROWS_PER_CHUNK = 2000  # Monthly is 48,000 rows x 2,794 columns: read it in slices, not one 1 GB matrix


def read_m4_csv(path: Path) -> tuple[list[str], list[np.ndarray]]:
    """Ids and value arrays (float64, without the empty tail) of one competition-layout CSV."""
    ids: list[str] = []
    series: list[np.ndarray] = []
    try:
        chunks = pd.read_csv(path, dtype={0: str}, engine="c", chunksize=_ROWS_PER_CHUNK)
        for frame in chunks:
            if frame.shape[1] < 2:
                break
            chunk_ids = frame.iloc[:, 0].astype(str).tolist()
            try:
                values = frame.iloc[:, 1:].to_numpy(dtype=np.float64)  # (rows, max_length), NaN tails
            except (TypeError, ValueError):
                raise DataError(f"The M4 file {path} holds non-numeric values: "
                                "re-download the original file.") from None
            present = ~np.isnan(values)
            lengths = present.sum(axis=1)
            # Values must be left-aligned: a gap inside a series would silently shift its time axis.
            left_aligned = present == (np.arange(values.shape[1])[None, :] < lengths[:, None])
            bad_rows = np.flatnonzero(~left_aligned.all(axis=1) | (lengths == 0))
            if bad_rows.size:
                shown = ", ".join(chunk_ids[i] for i in bad_rows[:5])
                raise DataError(f"The M4 file {path} has series with empty cells inside or no values ({shown}): "
                                "each row must hold its values left-aligned. Re-download the original file.")
            ids.extend(chunk_ids)
            series.extend(values[i, : lengths[i]].copy() for i in range(len(chunk_ids)))
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"Cannot read the M4 file {path}: {error}. Re-download it.") from None
    if not ids:
        raise DataError(f"The M4 file {path} has no series: expected an id column and value columns.")
    return ids, series


@dataclass(frozen=True)
class M4Series:
    """The series of one pattern: ids, training histories, and test horizons when the test file exists."""

    meta: M4Pattern
    ids: list[str]
    train: list[np.ndarray]  # float64, lengths differ
    test: list[np.ndarray] | None  # float64, each of length meta.horizon
    train_path: Path
    test_path: Path | None

    def test_matrix(self) -> np.ndarray:
        """(n_series, horizon) test values; a DataError when the test file was not found."""
        if self.test is None:
            raise DataError(f"The M4 {self.meta.name} test file ({self.meta.test_file}) is missing: fetch it "
                            "to evaluate; training only needs the train file.")
        return np.stack(self.test)


_CACHE: dict[tuple, M4Series] = {}
_CACHE_SIZE = 2  # the app flips between two patterns; Monthly alone holds ~10 million values


def _file_key(path: Path | None) -> tuple:
    if path is None:
        return (None,)
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def load_m4(pattern: str, data_path: str | None = None) -> M4Series:
    """Read (and cache while the files are unchanged) one pattern's train and, if present, test file."""
    chosen = m4_pattern(pattern)
    train_path = find_m4_file(chosen.name, "train", data_path)
    if train_path is None:
        raise _missing_file_error(chosen, "train", data_path)
    test_path = find_m4_file(chosen.name, "test", data_path)
    key = (chosen.name, _file_key(train_path), _file_key(test_path))
    if key in _CACHE:
        return _CACHE[key]
    ids, train = read_m4_csv(train_path)
    test = None
    if test_path is not None:
        test_ids, test = read_m4_csv(test_path)
        if test_ids != ids:
            raise DataError(f"{test_path} and {train_path} list different series ids: "
                            "use a train and test file of the same pattern, both original.")
        wrong = [ids[i] for i, values in enumerate(test) if values.size != chosen.horizon]
        if wrong:
            raise DataError(f"In {test_path} these series do not have {chosen.horizon} test values "
                            f"(the {chosen.name} horizon): {', '.join(wrong[:5])}. Re-download the file.")
    loaded = M4Series(chosen, ids, train, test, train_path, test_path)
    while len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))  # the oldest
    _CACHE[key] = loaded
    return loaded


def read_m4_description(pattern: str) -> str:
    """The prompt's domain paragraph: ``m4_<Pattern>.md`` when written, else the general ``m4.md``."""
    chosen = m4_pattern(pattern)
    for file_name in (f"m4_{chosen.name}.md", "m4.md"):
        path = DESCRIPTIONS_DIR / file_name
        if path.is_file():
            text = " ".join(path.read_text(encoding="utf-8").split())  # the prompt inlines it as one line
            if text:
                return text
    raise DataError(f"No description for M4 {chosen.name}: write one paragraph in "
                    f"{DESCRIPTIONS_DIR / ('m4_' + chosen.name + '.md')}.")


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


def describe_m4(pattern: str, seq_len: int | None = None, pred_len: int | None = None,
                data_path: str | None = None) -> dict:
    """Facts about one pattern for ``data info`` and the Data page (plain JSON-able values).

    Given lengths that differ from the protocol are reported in ``notes`` instead of raising:
    describing a dataset should not fail over a model setting.
    """
    chosen = m4_pattern(pattern)
    info: dict = {
        "name": "m4", "kind": "m4", "pattern": chosen.name, "horizon": chosen.horizon,
        "frequency": chosen.frequency, "seq_len": chosen.seq_len, "pred_len": chosen.horizon,
        "history_size": chosen.history_size, "window_limit": chosen.window_limit,
        "features": "S", "channels": ["value"], "series": chosen.series_count,
        "files": {"train": None, "test": None}, "available": False, "notes": [],
    }
    for given, name, wanted in ((seq_len, "seq_len", chosen.seq_len), (pred_len, "pred_len", chosen.horizon)):
        if given is not None and int(given) != wanted:
            info["notes"].append(f"{name} {given} was given; the M4 {chosen.name} protocol uses {wanted}.")
    if find_m4_file(chosen.name, "train", data_path) is None:
        info["notes"].append(f"{chosen.train_file} is not downloaded: series is the competition's count.")
        return info
    loaded = load_m4(chosen.name, data_path)
    lengths = np.array([values.size for values in loaded.train])
    info.update({
        "series": len(loaded.ids), "available": True,
        "files": {"train": str(loaded.train_path),
                  "test": None if loaded.test_path is None else str(loaded.test_path)},
        "length_min": int(lengths.min()), "length_max": int(lengths.max()),
        "length_median": float(np.median(lengths)),
        "shorter_than_seq_len": int((lengths < chosen.seq_len).sum()),
        "first_ids": loaded.ids[:5],
    })
    if loaded.test_path is None:
        info["notes"].append(f"{chosen.test_file} is not downloaded: training works, evaluation needs it.")
    return info


def prepare_m4(config, seq_len: int | None, pred_len: int | None, **options):
    """Load one pattern and return its ``M4Data`` (the reference ``run_m4.py`` protocol).

    ``config`` is a ``DataConfig`` (uses ``seasonal_patterns`` and ``data_path``). ``seq_len`` and
    ``pred_len`` must be 2 x horizon and the horizon (None picks them); anything else raises a
    ConfigError that names the right values. ``options`` go to ``M4Data.from_series`` (seed,
    samples_per_series, holdout_validation).
    """
    from timellm_core.data.m4_windows import M4Data  # the windows module imports this one

    chosen = m4_pattern(getattr(config, "seasonal_patterns", None))
    seq_len, pred_len = check_m4_lengths(chosen, seq_len, pred_len)
    loaded = load_m4(chosen.name, getattr(config, "data_path", None))
    return M4Data.from_series(loaded, description=read_m4_description(chosen.name), **options)
