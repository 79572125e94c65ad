"""Background training: a ``TrainingJob`` runs a Trainer in a daemon thread of this process, a
``ProcessTrainingJob`` (``process_job.py``) in a child process of its own; the job, not the UI, owns it.

Both offer the same reading side: other threads (Streamlit pages polling every second) read
``status``, ``progress``, ``eta_s``, ``view`` and ``events()`` under a lock; ``cancel()`` asks the
trainer to stop, which it checks before every step and every evaluation batch, so it takes effect
within one step. The thread suits code and tests that hand in their own data or model; the app
uses the process, so that no browser session competes with training for the interpreter.

One job runs at a time per registry (a CPU or a small GPU has no room for two): ``JobRegistry.start``
refuses a second one with a message naming the running job. It does not queue: a queued run that
starts minutes later, unattended, surprises people more than a clear "busy" message.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from typing import Any

import torch

from timellm_core.config import RunConfig
from timellm_core.errors import TimeLLMError, TrainingError
from timellm_core.training.events import Event, make_event
from timellm_core.training.process_job import ProcessTrainingJob
from timellm_core.training.progress import ACTIVE as ACTIVE_STATUSES
from timellm_core.training.progress import JobProgress, ProgressView
from timellm_core.training.runs import RunFolder, find_run
from timellm_core.training.trainer import Trainer, TrainingResult

AnyJob = Any  # TrainingJob | ProcessTrainingJob: the same reading and control methods


class TrainingJob:
    """One training run in a background thread. Create it, then ``start()`` (the registry does both).

    ``backbone`` may be a loaded Backbone or a callable ``BackboneConfig -> Backbone`` (the app's
    cached loader), so a backbone already in memory is reused. ``resume`` is a run folder (or run
    id) to continue from its last checkpoint; its saved config is used.
    """

    def __init__(self, config: RunConfig | None = None, *, runs_dir: str | os.PathLike[str] | None = None,
                 run_id: str | None = None, resume: str | os.PathLike[str] | None = None, backbone: Any = None,
                 data: Any = None, model: torch.nn.Module | None = None):
        if resume is not None:
            self._run = RunFolder.open(find_run(resume, runs_dir))
            self.config = self._run.config()
        else:
            if config is None:
                raise TrainingError("A training job needs a RunConfig (or resume=RUN).")
            self.config = config.copy().validate()
            self._run = RunFolder.create(self.config, runs_dir, run_id)
        self._resume = resume is not None
        self._backbone, self._data, self._model = backbone, data, model
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._status = "queued"
        self._error: str | None = None
        self._result: TrainingResult | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._progress = JobProgress()
        self.created = time.time()
        self._thread = threading.Thread(target=self._work, name=f"timellm-train-{self._run.run_id}", daemon=True)

    # --- read from any thread -----------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def run_dir(self) -> str:
        return str(self._run.path)

    @property
    def status(self) -> str:
        """queued | running | finished | failed | cancelled."""
        with self._lock:
            return self._status

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def error(self) -> str | None:
        with self._lock:
            return self._error

    @property
    def result(self) -> TrainingResult | None:
        with self._lock:
            return self._result

    @property
    def test_metrics(self) -> dict[str, Any] | None:
        result = self.result
        return result.test_metrics if result is not None else None

    @property
    def view(self) -> ProgressView:
        """The phase in words, the share of the work done and the seconds left (see ``progress.py``)."""
        with self._lock:
            return self._progress.view(self._status)

    @property
    def progress(self) -> float:
        """Share of the work done (training steps and evaluation passes), 0..1 (1 only once finished)."""
        return self.view.fraction

    @property
    def eta_s(self) -> float | None:
        """Seconds left, evaluation passes and the final test included; None before the first timed step."""
        return self.view.eta_s

    def events(self, since: int = 0) -> list[Event]:
        """A copy of the events so far (from index ``since``: poll incrementally)."""
        with self._lock:
            # Nested values (window counts, metrics) are copied too: a reader cannot change the job's record.
            return [{key: copy.deepcopy(value) if isinstance(value, (dict, list)) else value
                     for key, value in event.items()} for event in self._events[since:]]

    def event_count(self) -> int:
        with self._lock:
            return len(self._events)

    # --- control ------------------------------------------------------------------------------

    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the trainer to stop; it does so before its next step (or evaluation batch)."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (True) or the timeout passes (False)."""
        return self._done.wait(timeout)

    # --- the thread ---------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            self._progress.add(event)

    def _work(self) -> None:
        with self._lock:
            self._status = "running"
        status, error, result = "failed", None, None
        try:
            trainer = Trainer(self.config, run=self._run, data=self._data, backbone=self._backbone,
                              model=self._model, on_event=self._on_event, cancel=self._cancel, resume=self._resume)
            result = trainer.run()
            status = result.status
        except TimeLLMError as failure:
            error = str(failure)
        except BaseException as failure:  # a bug: still a readable status, never a dead silent thread
            error = f"Training failed: {type(failure).__name__}: {failure}"
        finally:
            if status == "failed":
                self._record_failure(error or "Training failed.")
            with self._lock:
                self._status, self._error, self._result = status, error, result
                self._data = self._model = None  # the run folder holds what is worth keeping
            self._done.set()

    def _record_failure(self, message: str) -> None:
        # The trainer records its own failures; this covers faults before it could (e.g. a bad config).
        with self._lock:
            recorded = any(event.get("type") == "failed" for event in self._events)
        if recorded:
            return
        event = make_event("failed", message=message, where="setup")  # make_event redacts secrets
        message = event["message"]
        self._on_event(event)
        try:
            self._run.append_event(event)
            self._run.update(status="failed", error=message)
        except TimeLLMError:
            pass


class JobRegistry:
    """The process's training jobs; at most one active. Thread-safe (the app shares one instance)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, AnyJob] = {}
        self._latest: AnyJob | None = None

    def start(self, config: RunConfig | None = None, *, process: bool = False, **options: Any) -> AnyJob:
        """Create and start a job; TrainingError if one is already running.

        ``process=True`` trains in a child process that builds everything from the config (options as
        ProcessTrainingJob's: what the app uses); otherwise in a thread of this process, which accepts
        ready data, backbone and model (options as TrainingJob's).
        """
        with self._lock:
            running = self._active_locked()
            if running is not None:
                raise TrainingError(
                    f"A training run is in progress: {running.run_id} ({running.status}, "
                    f"{running.progress:.0%} done). Wait for it to finish, or stop it first (the Stop button "
                    "on the Train page, or job.cancel()), then start the new run.")
            job = (ProcessTrainingJob if process else TrainingJob)(config, **options)
            self._jobs[job.run_id] = job
            self._latest = job
            job.start()
            return job

    def _active_locked(self) -> AnyJob | None:
        for job in self._jobs.values():
            if job.is_active:
                return job
        return None

    def active(self) -> AnyJob | None:
        with self._lock:
            return self._active_locked()

    def latest(self) -> AnyJob | None:
        with self._lock:
            return self._latest

    def get(self, run_id: str) -> AnyJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def jobs(self) -> list[AnyJob]:
        with self._lock:
            return list(self._jobs.values())


JOBS = JobRegistry()


def default_registry() -> JobRegistry:
    """The process-wide registry (the app wraps it in ``st.cache_resource``)."""
    return JOBS
