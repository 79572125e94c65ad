"""Training: the loop (``Trainer``), background jobs (``TrainingJob``, ``JobRegistry``), runs on disk.

Typical use from the app::

    job = default_registry().start(config, backbone=cached_loader)
    job.progress, job.eta_s, job.events(since=n), job.cancel()

and from code::

    result = Trainer(config, run=RunFolder.create(config)).run()
"""

from timellm_core.training.events import EVENT_TYPES, TERMINAL_TYPES, make_event
from timellm_core.training.job import JOBS, JobRegistry, TrainingJob, default_registry
from timellm_core.training.restore import evaluate_run, load_run_model
from timellm_core.training.runs import (
    RunFolder,
    RunInfo,
    default_runs_dir,
    find_run,
    list_runs,
    load_run,
)
from timellm_core.training.schedules import LearningRateSchedule
from timellm_core.training.trainer import Trainer, TrainingResult

__all__ = [
    "EVENT_TYPES",
    "JOBS",
    "JobRegistry",
    "LearningRateSchedule",
    "RunFolder",
    "RunInfo",
    "TERMINAL_TYPES",
    "Trainer",
    "TrainingJob",
    "TrainingResult",
    "default_registry",
    "default_runs_dir",
    "evaluate_run",
    "find_run",
    "list_runs",
    "load_run",
    "load_run_model",
    "make_event",
]
