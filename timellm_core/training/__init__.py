"""Training: the loop (``Trainer``), background jobs (``TrainingJob``, ``JobRegistry``), runs on disk.

Typical use from the app::

    job = default_registry().start(config, process=True)   # a child process trains
    job = default_registry().start(config, backbone=cached_loader)   # a thread of this process trains
    job.progress, job.eta_s, job.events(since=n), job.cancel()

and from code::

    result = Trainer(config, run=RunFolder.create(config)).run()

Names are imported on first use, so that ``python -m timellm_core --help`` (which only needs the
flag table in ``reference_flags``) does not pay for torch and accelerate.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EVENT_TYPES": "events", "TERMINAL_TYPES": "events", "make_event": "events",
    "JOBS": "job", "JobRegistry": "job", "TrainingJob": "job", "default_registry": "job",
    "ProcessTrainingJob": "process_job", "JobProgress": "progress", "ProgressView": "progress",
    "stop_report": "progress",
    "evaluate_run": "restore", "load_run_model": "restore",
    "RunFolder": "runs", "RunInfo": "runs", "default_runs_dir": "runs", "find_run": "runs",
    "list_runs": "runs", "load_run": "runs",
    "LearningRateSchedule": "schedules",
    "Trainer": "trainer", "TrainingResult": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
