"""A training job in a child process: ``python -m timellm_core.cli.train_worker RUN_DIR`` runs the same
Trainer as the terminal does, and the run folder is the only channel between the two processes.

Why a process and not a thread: in the app, every browser session's reruns and polling run Python
in the server process; a training thread there shares one interpreter lock with all of them, and
was measured 7-30x slower while a second browser watched. A child process has an interpreter of
its own, so viewers cost training only the CPU time they really use.

- This side creates the run folder (so the run id is known at once), starts the child, and reads
  ``metrics.jsonl`` as it grows: the same events, progress and ETA as a thread job offers.
- ``cancel()`` writes ``cancel.request`` in the run folder; the child polls for it (and for this
  process: if the server goes away, the run stops too) and the trainer stops within one step.
- A failure inside the trainer is recorded by the trainer (a ``failed`` event and config.json); a
  child that dies without a word (killed, out of memory, a crash in native code) is recorded here,
  with the end of its output (``train.log``), so the page always has a message to show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from timellm_core.backbones import is_available, resolve_backbone_spec
from timellm_core.backbones.loading import weights_source
from timellm_core.config import RunConfig
from timellm_core.errors import BackboneError, TimeLLMError, TrainingError
from timellm_core.training.events import TERMINAL_TYPES, Event, last_of_type, make_event
from timellm_core.training.progress import ACTIVE, JobProgress, ProgressView
from timellm_core.training.runs import (
    LOG_FILE, METRICS_FILE, TEST_METRICS_FILE, RunFolder, find_run)
from timellm_core.training.trainer import TrainingResult

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder holding timellm_core/
LOG_TAIL_CHARS = 1500


class ProcessTrainingJob:
    """One training run in a child process; the same reading and control methods as ``TrainingJob``.

    The child builds its data, backbone and model from the config (nothing in memory crosses a
    process boundary), so ``data`` and ``model`` are refused; ``backbone`` may be given and is ignored.
    ``worker_args`` are added to the child's command line (e.g. ``--shuffle_test``); ``record`` values
    go into a new run's config.json (e.g. an ablation study's tag).
    """

    def __init__(self, config: RunConfig | None = None, *, runs_dir: str | os.PathLike[str] | None = None,
                 run_id: str | None = None, resume: str | os.PathLike[str] | None = None, backbone: Any = None,
                 data: Any = None, model: Any = None, worker_args: Sequence[str] = (),
                 record: dict[str, Any] | None = None):
        if data is not None or model is not None:
            raise TrainingError("A training process builds its data and model from the config: use a thread job "
                                "(JobRegistry.start(..., process=False)) to train ready-made ones.")
        if resume is not None:
            self._run = RunFolder.open(find_run(resume, runs_dir))
            self.config = self._run.config()
        else:
            if config is None:
                raise TrainingError("A training job needs a RunConfig (or resume=RUN).")
            self.config = config.copy().validate()
            check_backbone_on_disk(self.config)
            self._run = RunFolder.create(self.config, runs_dir, run_id, runner="process", **(record or {}))
        self._resume = resume is not None
        self._worker_args = [str(arg) for arg in worker_args]
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._progress = JobProgress()
        self._offset = 0
        self._file_id: tuple[int, int] | None = None
        self._process: subprocess.Popen | None = None
        self._final: str | None = None
        self._error: str | None = None
        self.created = time.time()

    # --- read from any thread -----------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def run_dir(self) -> str:
        return str(self._run.path)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def status(self) -> str:
        """queued (the child is starting) | running | finished | failed | cancelled."""
        with self._lock:
            return self._status_locked()

    def _status_locked(self) -> str:
        self._refresh_locked()
        if self._final is not None:
            return self._final
        return "running" if self._progress.started else "queued"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def error(self) -> str | None:
        with self._lock:
            self._refresh_locked()
            return self._error

    @property
    def test_metrics(self) -> dict[str, Any] | None:
        if self.status != "finished":
            return None
        try:
            metrics = json.loads((self._run.path / TEST_METRICS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return metrics if isinstance(metrics, dict) else None

    @property
    def result(self) -> Any:
        """A TrainingResult once the run has finished or stopped, else None."""
        status = self.status
        if status not in ("finished", "cancelled"):
            return None
        events = self.events()
        epochs = [e for e in events if e.get("type") == "epoch"]
        best = last_of_type([e for e in events if e.get("type") == "checkpoint" and e.get("kind") == "best"],
                            "checkpoint")
        return TrainingResult(status, self.run_dir, len(epochs), best.get("epoch") if best else None,
                              self.test_metrics)

    @property
    def view(self) -> ProgressView:
        with self._lock:
            return self._progress.view(self._status_locked())

    @property
    def progress(self) -> float:
        return self.view.fraction

    @property
    def eta_s(self) -> float | None:
        return self.view.eta_s

    def events(self, since: int = 0) -> list[Event]:
        """The run's events so far, as the child wrote them (from index ``since``)."""
        with self._lock:
            self._refresh_locked()
            return [dict(event) for event in self._events[since:]]

    def event_count(self) -> int:
        with self._lock:
            self._refresh_locked()
            return len(self._events)

    # --- control ------------------------------------------------------------------------------

    def start(self) -> "ProcessTrainingJob":
        """Start the child process (its output goes to train.log in the run folder)."""
        self._run.clear_cancel()  # a request left from an earlier stop of a resumed run
        command = [sys.executable, "-m", "timellm_core.cli.train_worker", str(self._run.path),
                   "--parent", str(os.getpid())] + (["--resume"] if self._resume else []) + self._worker_args
        environment = dict(os.environ)
        # The child imports this very package, wherever the server was started from.
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_PARENT)] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
        try:
            with open(self._run.path / LOG_FILE, "ab") as log:
                self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                 stderr=subprocess.STDOUT, env=environment)
        except OSError as error:
            self._record_failure(f"Could not start the training process: {error}.")
        return self

    def cancel(self) -> None:
        """Ask the child to stop; it does so before its next step (or evaluation batch)."""
        if self.is_active:
            self._run.request_cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (True) or the timeout passes (False)."""
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
        return not self.is_active

    # --- reading the run folder ---------------------------------------------------------------

    def _refresh_locked(self) -> None:
        """Read the lines the child appended since the last call; note its end when it has exited."""
        if self._final is not None:
            return
        exited = self._process is not None and self._process.poll() is not None
        self._read_new_events_locked()
        terminal = next((e for e in reversed(self._events) if e.get("type") in TERMINAL_TYPES), None)
        if terminal is not None and exited:  # active until the child has let go of its memory
            self._final = str(terminal["type"])
            self._error = terminal.get("message") if terminal["type"] == "failed" else None
        elif exited:
            code = self._process.returncode
            self._record_failure_locked(f"The training process ended without finishing (exit status {code})."
                                        + self._log_tail())
        if self._final is not None:
            self._run.clear_cancel()

    def _read_new_events_locked(self) -> None:
        path = self._run.path / METRICS_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            return
        file_id = (stat.st_dev, stat.st_ino)
        if file_id != self._file_id or stat.st_size < self._offset:
            # Resuming rewrites metrics.jsonl (a new file): read it again from the top.
            self._file_id, self._offset, self._events, self._progress = file_id, 0, [], JobProgress()
        if stat.st_size == self._offset:
            return
        with open(path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
        complete = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self._offset += complete
        for line in chunk[:complete].decode("utf-8", errors="replace").splitlines():
            event = _parse(line)
            if event is not None:
                self._events.append(event)
                self._progress.add(event)

    def _log_tail(self) -> str:
        try:
            text = (self._run.path / LOG_FILE).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""
        return f" Its last output: {text[-LOG_TAIL_CHARS:]}" if text else ""

    def _record_failure(self, message: str) -> None:
        with self._lock:
            self._record_failure_locked(message)

    def _record_failure_locked(self, message: str) -> None:
        event = make_event("failed", message=message, where="training process")  # redacts secrets
        self._final, self._error = "failed", event["message"]
        try:
            self._run.append_event(event)
            self._run.update(status="failed", error=event["message"])
        except TimeLLMError:
            pass
        self._read_new_events_locked()


def check_backbone_on_disk(config: RunConfig) -> None:
    """BackboneError (saying how to fetch it) when the backbone's weights are not here: said at once,
    not seconds later by a child that has imported torch only to fail."""
    spec = resolve_backbone_spec(config.backbone.name)
    if is_available(spec):
        return
    weights_source(spec)  # raises with the fetch command for a catalogue or hub model
    raise BackboneError(f"The weights of backbone {spec.name!r} are not on this machine.")


def _parse(line: str) -> Event | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "type" in event else None
