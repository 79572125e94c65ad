"""The files of a run folder: their names, writing and reading them safely, and the status they imply.

Writes go to a temporary file beside the target, are fsync'd, then renamed: a reader (the app, a
second process) sees the old file or the new one, never half of one. ``metrics.jsonl`` is read
line by line, and a torn last line (a killed writer) is skipped.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from timellm_core.errors import RunError
from timellm_core.training.events import TERMINAL_TYPES, Event

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
MODEL_FILE = "model.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
TEST_METRICS_FILE = "test_metrics.json"
PREDICTIONS_FILE = "predictions.npz"
LOG_FILE = "train.log"
BASELINES_FILE = "baselines.json"
SHUFFLE_TEST_FILE = "shuffle_test.json"  # the test windows again, each input shuffled in time (timellm_core.ablation)
CANCEL_FILE = "cancel.request"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, MODEL_FILE, TEST_METRICS_FILE, PREDICTIONS_FILE)


def _write_atomic(path: Path, write: Callable[[Any], None], mode: str = "w", what: str = "write") -> None:
    """Call ``write(handle)`` on a temporary file beside ``path``, fsync, then rename: readers see old or new."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(temporary, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise RunError(f"Could not {what} {path}: {error}. Free some disk space or check permissions.") from error


def _write_text_atomic(path: Path, text: str, what: str = "write") -> None:
    _write_atomic(path, lambda handle: handle.write(text), what=what)


def _write_json_atomic(path: Path, values: Any) -> None:
    _write_text_atomic(path, json.dumps(values, indent=2, default=str))


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise RunError(f"{path} is missing: this folder is not a complete run.") from None
    except (OSError, ValueError) as error:
        raise RunError(f"{path} is unreadable or not valid JSON ({error}).") from error


def read_events(path: Path) -> list[Event]:
    """Every complete event line; a torn or corrupt line (a killed writer) is skipped."""
    events: list[Event] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break  # the writer died mid-line
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "type" in event:
                    events.append(event)
    except FileNotFoundError:
        pass
    return events


def _process_alive(pid: Any, host: Any) -> bool:
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _derive_status(info: dict[str, Any], events: list[Event]) -> str:
    """Terminal events win; a run whose writer is gone without one was interrupted (resumable)."""
    for event in reversed(events):
        if event.get("type") in TERMINAL_TYPES:
            return str(event["type"])
        if event.get("type") == "resumed":
            break
    status = str(info.get("status", "queued"))
    if status in ("queued", "running") and not _process_alive(info.get("pid"), info.get("host")):
        return "interrupted"
    return status
