"""The child side of a ``ProcessTrainingJob`` (its entry point is ``python -m timellm_core.cli.train_worker``).

Trains the run whose folder the parent created, with the same Trainer as ``python -m timellm_core
train``; everything it reports goes to the run folder. A watcher thread turns ``cancel.request``
in the folder, or the parent's disappearance, into the trainer's cancel flag.

Exit status: 0 finished or stopped, 2 failed (the message is in the run folder), 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import threading

from typing import Any, Callable

from timellm_core.errors import TimeLLMError
from timellm_core.machine import process_peak_rss_bytes
from timellm_core.training.events import make_event
from timellm_core.training.runs import RunFolder

WATCH_INTERVAL_S = 0.2


def watch_for_stop(run: RunFolder, cancel: threading.Event, parent_pid: int | None) -> threading.Thread:
    """A daemon thread that sets ``cancel`` when a stop is requested or the parent process is gone."""

    def watch() -> None:
        while not cancel.is_set():
            orphaned = parent_pid is not None and os.getppid() != parent_pid
            if orphaned or run.cancel_requested():
                cancel.set()
                return
            cancel.wait(WATCH_INTERVAL_S)

    thread = threading.Thread(target=watch, name="timellm-stop-watch", daemon=True)
    thread.start()
    return thread


def train_run(run_dir: str, resume: bool = False, parent_pid: int | None = None,
              after_finish: Callable[[RunFolder, Any], None] | None = None) -> int:
    """Train (or resume) the run in ``run_dir``; returns the exit status.

    ``after_finish(run, trainer)`` runs once the run has finished (its test metrics are on disk). The
    process's peak memory (it trained this run alone) goes into config.json as ``peak_rss_bytes``.
    """
    try:
        run = RunFolder.open(run_dir)
        config = run.config()
    except TimeLLMError as error:
        print(f"Cannot train {run_dir}: {error}", file=sys.stderr)
        return 2
    cancel = threading.Event()
    watch_for_stop(run, cancel, parent_pid)
    try:
        # Imported here on purpose: a broken install (torch, transformers) then ends as a recorded failure.
        from timellm_core.training.trainer import Trainer

        trainer = Trainer(config, run=run, cancel=cancel, resume=resume)
        result = trainer.run()
    except TimeLLMError as error:  # the trainer has recorded it in the run folder
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BaseException as error:  # an import or a fault before the trainer could record it
        message = f"Training failed: {type(error).__name__}: {error}"
        event = make_event("failed", message=message, where="training process")
        try:
            run.append_event(event)
            run.update(status="failed", error=event["message"])
        except TimeLLMError:
            pass
        print(message, file=sys.stderr)
        return 2
    _record_peak_memory(run)
    if result.status == "finished" and after_finish is not None:
        after_finish(run, trainer)
    return 0 if result.status in ("finished", "cancelled") else 2


def _record_peak_memory(run: RunFolder) -> None:
    try:
        run.update(peak_rss_bytes=process_peak_rss_bytes())
    except TimeLLMError:  # a full disk: the run itself is complete; the figure is only missing
        pass
