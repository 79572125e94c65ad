"""M4 competition data: the six seasonal patterns, their files, reading them, and describing them.

The files keep the original competition layout: a header row, then one row per series with
the id in the first column and the values left-aligned, empty cells after a series ends.
``<Pattern>-train.csv`` holds each series' history, ``<Pattern>-test.csv`` its next
``horizon`` values. Files are looked up under ``dataset/m4/`` first, then ``$TIMELLM_DATA/m4/``.

The patterns' facts live in ``m4_patterns.py``; the training protocol (windows, splits, metrics)
and ``prepare_m4``, the data layer's entry point, in ``m4_windows.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from timellm_core.data.locate import candidate_paths
from timellm_core.data.m4_patterns import (  # noqa: F401 (the patterns' facts, re-exported for callers)
    M4_PATTERNS, M4Pattern, check_m4_lengths, m4_fetch_targets, m4_pattern)
from timellm_core.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DESCRIPTIONS_DIR = PROJECT_ROOT / "dataset" / "descriptions"


def _candidate_paths(relative_path: str, data_path: str | None) -> list[Path]:
    """Where a file may be: an explicit folder, then dataset/, then $TIMELLM_DATA (the project's order)."""
    name = Path(relative_path).name
    candidates = []
    if data_path:
        given = Path(data_path).expanduser()
        # A folder holding the files, or one of the pattern's files (its sibling is then next to it).
        candidates.append(given / name if given.is_dir() or not given.suffix else given.parent / name)
    candidates.extend(candidate_paths(relative_path))  # the data layer's lookup: every dataset searched alike
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
