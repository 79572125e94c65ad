"""Runs on disk: ``runs/<run_id>/`` holds everything a run produced, readable by any later process.

Files:

- ``config.json``: ``{"run_id", "created", "updated", "status", "pid", "host", "config": RunConfig.to_dict(),
  "backbone": {...}, "dataset": {...}, "versions": {...}}``, rewritten atomically when the status changes;
  also ``"trainable_parameters"`` (from the start of training), ``"peak_rss_bytes"`` (of a training process
  that trained this run alone) and ``"study"`` (``{"id", "mode", "seed"}`` for a run of an ablation study);
- ``metrics.jsonl``: one event a line, each line flushed and fsync'd as it is written, so a killed
  process leaves only complete lines (a torn last line is skipped by readers and trimmed on resume);
- ``model.safetensors`` (best trainable weights), ``checkpoint.safetensors`` (last epoch, for resume);
- ``test_metrics.json`` and ``predictions.npz`` once the final test on the best weights has run;
- ``baselines.json``: naive, seasonal naive and DLinear on the run's own test windows (``timellm_core.comparison``),
  written when an app run finishes or by ``evaluate``;
- ``shuffle_test.json``: test MSE/MAE with every input window shuffled in time, next to the plain ones
  (``timellm_core.ablation.shuffle``; written for the runs of an ablation study);
- ``train.log``: what a training child process printed (the app's runs; read when it dies without a word);
- ``cancel.request``: present while someone has asked the run's trainer to stop (the app's Stop button);
  the training process checks for it a few times a second.

The runs folder is ``runs/`` under the project root, or ``$TIMELLM_RUNS``, or an explicit argument.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from timellm_core.config import RunConfig
from timellm_core.errors import ConfigError, RunError
from timellm_core.training.events import Event, json_safe, last_of_type
from timellm_core.training.run_files import (  # noqa: F401 (the file names, re-exported for callers)
    BASELINES_FILE, CANCEL_FILE, CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE, METRICS_FILE, MODEL_FILE, PREDICTIONS_FILE,
    RUN_FILES, SHUFFLE_TEST_FILE, TEST_METRICS_FILE,
    _derive_status, _read_json, _write_atomic, _write_json_atomic, _write_text_atomic, read_events)

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def default_runs_dir() -> Path:
    """``$TIMELLM_RUNS`` when set, else ``runs/`` under the project root."""
    configured = os.environ.get("TIMELLM_RUNS")
    return Path(configured).expanduser() if configured else PROJECT_ROOT / "runs"


def resolve_runs_dir(runs_dir: str | os.PathLike[str] | None) -> Path:
    return Path(runs_dir).expanduser() if runs_dir is not None else default_runs_dir()


def check_run_id(run_id: str) -> str:
    """A run id is a single folder name of ``[A-Za-z0-9_.-]``; anything else (``..``, ``/``) is a RunError."""
    if not isinstance(run_id, str) or not _RUN_ID_PATTERN.match(run_id) or set(run_id) <= {"."}:
        raise RunError(f"Invalid run id {run_id!r}: use 1 to 128 letters, digits, '_', '-' or '.', "
                       "and no path separators.")
    return run_id


def make_run_id(config: RunConfig, when: float | None = None, name: str | None = None) -> str:
    """``<name or dataset_backbone_seq_pred>_<YYYYmmdd-HHMMSS>``, made safe for a folder name."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when if when is not None else time.time()))
    if not name:
        backbone = Path(str(config.backbone.name)).name or "backbone"
        name = f"{config.data.name}_{backbone}_{config.model.seq_len}_{config.model.pred_len}"
    safe = _UNSAFE.sub("-", str(name)).strip(".-")[:100]
    return f"{safe}_{stamp}" if safe else f"run_{stamp}"


def run_path(runs_dir: str | os.PathLike[str] | None, run_id: str) -> Path:
    """The folder of ``run_id`` inside ``runs_dir``, refusing anything that would leave it."""
    base = resolve_runs_dir(runs_dir).resolve()
    folder = (base / check_run_id(run_id)).resolve()
    if folder.parent != base:
        raise RunError(f"Run id {run_id!r} points outside the runs folder {base}.")
    return folder


def find_run(run: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None) -> Path:
    """A run given as a folder path or as a run id inside ``runs_dir``; RunError if it is not a run."""
    candidate = Path(run).expanduser()
    if (candidate / CONFIG_FILE).is_file():
        return candidate.resolve()
    if isinstance(run, str) and os.sep not in run and "/" not in run:
        folder = run_path(runs_dir, run)
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise RunError(f"No run at {str(run)!r}: give a run folder (with a config.json) or a run id from "
                   "`python -m timellm_core runs list`.")


class RunFolder:
    """Writes one run's files; thread-safe (the training thread writes, others may read)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._info: dict[str, Any] = {}

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, config: RunConfig, runs_dir: str | os.PathLike[str] | None = None,
               run_id: str | None = None, name: str | None = None, **extra: Any) -> "RunFolder":
        """A new, empty run folder with its config.json (status ``queued``).

        ``run_id`` is used as given (RunError if taken); otherwise the id is ``name`` (or the dataset,
        backbone and lengths) plus a time stamp. ``extra`` values are recorded in config.json.
        """
        chosen = run_id if run_id is not None else make_run_id(config, name=name)
        folder = run_path(runs_dir, chosen)
        if run_id is None:  # two runs started in the same second get distinct folders
            suffix = 1
            while folder.exists():
                suffix += 1
                folder = run_path(runs_dir, f"{chosen}-{suffix}")
        elif folder.exists():
            raise RunError(f"A run named {run_id!r} already exists in {folder.parent}: choose another run id "
                           "or resume it with --resume.")
        try:
            folder.mkdir(parents=True)
        except OSError as error:
            raise RunError(f"Could not create the run folder {folder}: {error}.") from error
        run = cls(folder)
        now = time.time()
        run._info = {"run_id": folder.name, "created": now, "updated": now, "status": "queued",
                     "pid": os.getpid(), "host": socket.gethostname(), "config": config.to_dict(),
                     "backbone": None, "dataset": None, "versions": _versions(), **extra}
        run._write_info()
        return run

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> "RunFolder":
        """An existing run folder (for resume): its config.json must be readable."""
        run = cls(Path(path))
        info = _read_json(run.path / CONFIG_FILE)
        if not isinstance(info, dict) or "config" not in info:
            raise RunError(f"{run.path / CONFIG_FILE} is not a run configuration.")
        run._info = info
        return run

    @property
    def info(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._info, default=str))

    def config(self) -> RunConfig:
        try:
            return RunConfig.from_dict(self._info["config"])
        except (ConfigError, TypeError, KeyError) as error:
            raise RunError(f"The run's config.json cannot be read back ({error}).") from error

    def file(self, name: str) -> Path:
        return self.path / name

    def update(self, **values: Any) -> None:
        """Merge values into config.json (status, backbone, dataset, ...) and rewrite it atomically."""
        with self._lock:
            self._info.update(values)
            self._info["updated"] = time.time()
            self._info["pid"] = os.getpid()
            self._info["host"] = socket.gethostname()
            self._write_info()

    def _write_info(self) -> None:
        _write_json_atomic(self.path / CONFIG_FILE, self._info)

    def append_event(self, event: Event) -> None:
        """One JSON line, written in one call, flushed and fsync'd before returning."""
        line = json.dumps(event, default=str, allow_nan=False) + "\n"
        path = self.path / METRICS_FILE
        with self._lock:
            try:
                with open(path, "a", encoding="utf-8") as handle:
                    start = handle.tell()
                    try:
                        handle.write(line)
                        handle.flush()
                        os.fsync(handle.fileno())
                    except OSError:
                        handle.truncate(start)  # no torn line for the next event to be glued to
                        raise
            except OSError as error:
                raise RunError(f"Could not append to {path}: {error}. Free some disk space (or check the "
                               "folder's permissions) and resume the run.") from error

    def rewrite_events(self, events: list[Event]) -> None:
        """Replace metrics.jsonl (atomically) with ``events``: resume drops what the checkpoint lost."""
        path = self.path / METRICS_FILE
        text = "".join(json.dumps(event, default=str, allow_nan=False) + "\n" for event in events)
        with self._lock:
            _write_text_atomic(path, text, what="rewrite")

    def events(self) -> list[Event]:
        return read_events(self.path / METRICS_FILE)

    def request_cancel(self) -> None:
        """Ask the process training this run to stop (it polls for the file): works from any process."""
        try:
            (self.path / CANCEL_FILE).touch()
        except OSError as error:
            raise RunError(f"Could not ask run {self.run_id} to stop ({error}).") from error

    def cancel_requested(self) -> bool:
        return (self.path / CANCEL_FILE).exists()

    def clear_cancel(self) -> None:
        (self.path / CANCEL_FILE).unlink(missing_ok=True)

    def write_test_metrics(self, metrics: dict[str, Any]) -> None:
        _write_json_atomic(self.path / TEST_METRICS_FILE, json_safe(metrics))

    def write_baselines(self, values: dict[str, Any]) -> None:
        _write_json_atomic(self.path / BASELINES_FILE, json_safe(values))

    def write_shuffle_test(self, values: dict[str, Any]) -> None:
        _write_json_atomic(self.path / SHUFFLE_TEST_FILE, json_safe(values))

    def write_predictions(self, arrays: dict[str, np.ndarray]) -> None:
        _write_atomic(self.path / PREDICTIONS_FILE, lambda handle: np.savez_compressed(handle, **arrays), mode="wb")


def _versions() -> dict[str, str]:
    import torch
    import transformers

    from timellm_core import __version__
    return {"timellm_core": __version__, "torch": torch.__version__, "transformers": transformers.__version__}


@dataclass
class RunInfo:
    """What a run folder says about itself, for listing and for the app's pages."""

    run_id: str
    path: Path
    status: str  # queued | running | finished | failed | cancelled | interrupted
    created: float | None
    updated: float | None
    config: RunConfig | None  # None when config.json cannot be rebuilt (the reason is in ``problem``)
    config_dict: dict[str, Any]
    backbone: dict[str, Any] | None
    dataset: dict[str, Any] | None
    events: list[Event] = field(default_factory=list)
    fast_precision: dict[str, Any] | None = None  # fast runs: {"name": "bf16" | "fp16" | "fp32", "reason": ...}
    test_metrics: dict[str, Any] | None = None
    baselines: dict[str, Any] | None = None  # baselines.json: the simple forecasters on the same test windows
    has_model: bool = False
    has_checkpoint: bool = False
    has_predictions: bool = False
    error: str | None = None  # the failure message of a failed run
    problem: str | None = None  # why the folder could not be read completely
    study: dict[str, Any] | None = None  # {"id", "mode", "seed"} for a run of an ablation study
    trainable_parameters: int | None = None
    peak_rss_bytes: int | None = None  # of the process that trained this run alone (None: not measured)
    shuffle_test: dict[str, Any] | None = None  # shuffle_test.json

    def file(self, name: str) -> Path:
        """One of the run's files by its name in ``run_files`` (e.g. ``PREDICTIONS_FILE``)."""
        return self.path / name

    @property
    def weights_path(self) -> Path:
        """The best trainable weights (model.safetensors)."""
        return self.file(MODEL_FILE)

    @property
    def predictions_path(self) -> Path:
        """The final test's forecasts and truths (predictions.npz)."""
        return self.file(PREDICTIONS_FILE)

    @property
    def epochs_done(self) -> int:
        epoch = last_of_type(self.events, "epoch")
        return int(epoch["epoch"]) if epoch else 0

    @property
    def windows_total(self) -> dict[str, int]:
        """Windows per split of the full data, from the run's ``started`` event ({} when it has none)."""
        started = next((event for event in self.events if event.get("type") == "started"), None)
        return dict((started or {}).get("windows") or {})

    @property
    def best_val_mse(self) -> float | None:
        values = [e["val_mse"] for e in self.events if e.get("type") == "epoch" and e.get("val_mse") is not None]
        return min(values) if values else None

    def epoch_events(self) -> list[Event]:
        return [e for e in self.events if e.get("type") == "epoch"]

    def step_events(self) -> list[Event]:
        return [e for e in self.events if e.get("type") == "step"]

    def summary(self) -> dict[str, Any]:
        """A JSON-able one-line view (``runs list --json``)."""
        cfg = self.config_dict or {}
        metrics = self.test_metrics or {}
        return {"run_id": self.run_id, "path": str(self.path), "status": self.status, "created": self.created,
                "data": (cfg.get("data") or {}).get("name"), "backbone": (cfg.get("backbone") or {}).get("name"),
                "seq_len": (cfg.get("model") or {}).get("seq_len"), "pred_len": (cfg.get("model") or {}).get("pred_len"),
                "epochs_done": self.epochs_done, "best_val_mse": self.best_val_mse,
                "test_mse": metrics.get("test_mse"), "test_mae": metrics.get("test_mae"),
                "error": self.error, "problem": self.problem}


def load_run(run_dir: str | os.PathLike[str]) -> RunInfo:
    """Everything a run folder says: config, events, test metrics. RunError if it is not a run."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(f"{path} is not a run folder.")
    info = _read_json(path / CONFIG_FILE)
    if not isinstance(info, dict):
        raise RunError(f"{path / CONFIG_FILE} is not a run configuration.")
    problem = None
    try:
        config: RunConfig | None = RunConfig.from_dict(info.get("config") or {})
    except (ConfigError, TypeError) as error:
        config, problem = None, f"config.json cannot be rebuilt: {error}"
    events = read_events(path / METRICS_FILE)
    test_metrics = None
    if (path / TEST_METRICS_FILE).is_file():
        try:
            test_metrics = _read_json(path / TEST_METRICS_FILE)
        except RunError as error:
            problem = str(error)
    baselines = None
    if (path / BASELINES_FILE).is_file():
        try:
            baselines = _read_json(path / BASELINES_FILE)
        except RunError as error:
            problem = str(error)
    shuffle_test = None
    if (path / SHUFFLE_TEST_FILE).is_file():
        try:
            shuffle_test = _read_json(path / SHUFFLE_TEST_FILE)
        except RunError as error:
            problem = str(error)
    failed = last_of_type(events, "failed")
    return RunInfo(
        run_id=path.name, path=path.resolve(), status=_derive_status(info, events), created=info.get("created"),
        updated=info.get("updated"), config=config, config_dict=info.get("config") or {},
        backbone=info.get("backbone"), dataset=info.get("dataset"), events=events, test_metrics=test_metrics,
        fast_precision=info.get("fast_precision") if isinstance(info.get("fast_precision"), dict) else None,
        baselines=baselines if isinstance(baselines, dict) else None,
        has_model=(path / MODEL_FILE).is_file(), has_checkpoint=(path / CHECKPOINT_FILE).is_file(),
        has_predictions=(path / PREDICTIONS_FILE).is_file(),
        error=failed.get("message") if failed else None, problem=problem,
        study=info.get("study") if isinstance(info.get("study"), dict) else None,
        trainable_parameters=_int_or_none(info.get("trainable_parameters")),
        peak_rss_bytes=_int_or_none(info.get("peak_rss_bytes")),
        shuffle_test=shuffle_test if isinstance(shuffle_test, dict) else None)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def list_runs(runs_dir: str | os.PathLike[str] | None = None) -> list[RunInfo]:
    """Every run under ``runs_dir``, newest first; unreadable folders are listed with their problem."""
    base = resolve_runs_dir(runs_dir)
    if not base.is_dir():
        return []
    runs = []
    for folder in base.iterdir():
        if not folder.is_dir() or folder.name.startswith(".") or not (folder / CONFIG_FILE).exists():
            continue
        try:
            runs.append(load_run(folder))
        except RunError as error:
            runs.append(RunInfo(run_id=folder.name, path=folder.resolve(), status="corrupt", created=None,
                                updated=None, config=None, config_dict={}, backbone=None, dataset=None,
                                problem=str(error)))
    runs.sort(key=lambda run: run.created or 0.0, reverse=True)
    return runs
