"""Finding dataset files on disk, and the one place that downloads them (`data fetch`).

Order: an explicit path, then ``dataset/<folder>/<file>`` in the project, then
``$TIMELLM_DATA/<folder>/<file>``. Nothing here touches the network except ``fetch_dataset``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from timellm_core.data.m4_patterns import m4_fetch_targets
from timellm_core.data.registry import PROJECT_ROOT, DatasetSpec, get_dataset_spec
from timellm_core.errors import DataError

DATA_ENV = "TIMELLM_DATA"
DATASET_DIR = PROJECT_ROOT / "dataset"
CONNECT_TIMEOUT_S = 10.0  # also the longest wait for any read: offline fails fast
_CHUNK = 1 << 20
_LOOSE_SIZE_TOLERANCE = 0.05  # for published sizes rounded to 3 digits (ECL, Traffic, ILI)

Progress = Callable[[int, int | None], None]  # (bytes done, total bytes or None)


def candidate_paths(relative_path: str) -> list[Path]:
    """Where a dataset file may live, in search order."""
    paths = [DATASET_DIR / relative_path]
    root = os.environ.get(DATA_ENV)
    if root:
        paths.append(Path(root).expanduser() / relative_path)
    return paths


def find_dataset_file(spec: DatasetSpec, data_path: str | os.PathLike | None = None) -> Path:
    """The CSV to read for ``spec``: ``data_path`` if given, else the first existing candidate path."""
    if data_path:
        path = Path(data_path).expanduser()
        if not path.is_absolute() and not path.exists() and (PROJECT_ROOT / path).exists():
            path = PROJECT_ROOT / path
        if not path.is_file():
            raise DataError(f"Data file not found: {path}. Check the path given as data_path.")
        return path
    if spec.kind == "custom":
        raise DataError("The custom dataset needs a CSV file: give its path as data_path "
                        "(CLI: --data_path FILE), with a date column and numeric channels.")
    if not spec.has_file:
        raise DataError(f"{spec.name} has no single data file to find (kind {spec.kind}).")
    for path in candidate_paths(spec.relative_path):
        if path.is_file():
            return path
    raise DataError(missing_file_message(spec.name, spec.relative_path, spec.url))


def missing_file_message(name: str, relative_path: str, url: str | None) -> str:
    """Where to put a missing file and how to get it."""
    env = os.environ.get(DATA_ENV)
    where = f"{DATASET_DIR / relative_path}"
    also = (f", or {Path(env) / relative_path} ({DATA_ENV} is set to {env})" if env
            else f", or set {DATA_ENV} to a folder holding {relative_path}")
    fetch = f" Download it with: python -m timellm_core data fetch {name}" + (f" (from {url})." if url else ".")
    return f"The {name} data file is missing. Put it at {where}{also}.{fetch}"


@dataclass(frozen=True)
class FetchItem:
    """One file a fetch would download, and where it already is (None when missing)."""

    relative_path: str  # under dataset/ or $TIMELLM_DATA
    url: str
    size_bytes: int | None
    sha256: str | None
    target: Path  # where a download is saved
    existing: Path | None


def plan_fetch(name: str, pattern: str | None = None,
               dest_dir: str | os.PathLike | None = None) -> list[FetchItem]:
    """The files ``fetch_dataset`` would handle, with those already on disk marked."""
    spec = get_dataset_spec(name)
    if spec.kind == "m4":
        # M4 has a train and a test file per seasonal pattern.
        remote = [(relative, url, size, sha) for url, relative, size, sha in m4_fetch_targets(pattern)]
    elif spec.has_file and spec.url:
        remote = [(spec.relative_path, spec.url, spec.size_bytes, spec.sha256)]
    else:
        raise DataError(f"{spec.name} has nothing to download: "
                        + ("it is generated in code." if spec.kind == "synthetic" else "it is your own CSV file."))
    base = Path(dest_dir) if dest_dir is not None else DATASET_DIR
    items = []
    for relative, url, size, sha in remote:
        target = base / relative
        existing = next((path for path in [target] + candidate_paths(relative)[1:] if path.is_file()), None)
        items.append(FetchItem(relative, url, size, sha, target, existing))
    return items


def fetch_dataset(name: str, progress: Progress | None = None, *, pattern: str | None = None,
                  dest_dir: str | os.PathLike | None = None, force: bool = False,
                  timeout: float = CONNECT_TIMEOUT_S) -> list[Path]:
    """Download a dataset's file(s) into ``dest_dir`` (default ``dataset/``); returns their paths.

    Files already present (in dest_dir or found through $TIMELLM_DATA) are not downloaded again
    unless ``force``. M4 needs ``pattern`` (Hourly, Weekly, ...) and fetches its train and test file.
    Offline, the first connection fails within ``timeout`` seconds with a DataError saying where
    to put the file by hand.
    """
    spec = get_dataset_spec(name)
    paths = []
    for item in plan_fetch(name, pattern, dest_dir):
        if item.existing is not None and not force:
            paths.append(item.existing)
            continue
        fetch_file(item.url, item.target, size_bytes=item.size_bytes, sha256=item.sha256,
                   size_exact=spec.size_exact, progress=progress, timeout=timeout, name=spec.name,
                   relative_path=item.relative_path)
        paths.append(item.target)
    return paths


def fetch_file(url: str, target: Path, *, size_bytes: int | None = None, sha256: str | None = None,
               size_exact: bool = True, progress: Progress | None = None,
               timeout: float = CONNECT_TIMEOUT_S, name: str = "", relative_path: str = "") -> Path:
    """Download ``url`` to ``target`` through ``target.part``, check size and sha256, then rename."""
    target = Path(target)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    done = 0
    request = urllib.request.Request(url, headers={"User-Agent": "timellm-explorer-fetch"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            # Folders are made only once the server answered: an offline attempt leaves nothing behind.
            target.parent.mkdir(parents=True, exist_ok=True)
            length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            total = int(length) if length and str(length).isdigit() else size_bytes
            with open(partial, "wb") as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
            http.client.HTTPException) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", None) or error
        status = f"HTTP {error.code}: " if isinstance(error, urllib.error.HTTPError) else ""
        label = name or target.name
        elsewhere = f" (or at ${DATA_ENV}/{relative_path})" if relative_path else ""
        raise DataError(f"Could not download {label} from {url} ({status}{reason}). If this machine is offline, "
                        f"download the file elsewhere and put it at {target}{elsewhere}.") from None
    except OSError as error:  # the disk side: permissions, space
        partial.unlink(missing_ok=True)
        raise DataError(f"Could not write {partial}: {error}. Check the folder is writable and has space.") from None
    _verify(partial, target, done, digest.hexdigest(), size_bytes, sha256, size_exact, url)
    os.replace(partial, target)
    return target


def _verify(partial: Path, target: Path, size: int, digest: str, expected_size: int | None,
            expected_sha: str | None, size_exact: bool, url: str) -> None:
    problem = None
    if expected_size is not None:
        if size_exact and size != expected_size:
            problem = f"it has {size} bytes instead of {expected_size}"
        elif not size_exact and abs(size - expected_size) > _LOOSE_SIZE_TOLERANCE * expected_size:
            problem = f"it has {size} bytes, far from the published ~{expected_size}"
    if problem is None and expected_sha is not None and digest != expected_sha:
        problem = f"its sha256 is {digest}, expected {expected_sha}"
    if problem:
        partial.unlink(missing_ok=True)
        raise DataError(f"The download of {target.name} from {url} is not the expected file: {problem}. "
                        f"Nothing was saved; try again, or put a verified copy at {target}.")
