"""The child side of a ``ProcessTrainingJob``: ``python -m timellm_core.training.worker RUN_DIR [--resume]``.

Trains the run whose folder the parent created, with the same Trainer as ``python -m timellm_core
train``; everything it reports goes to the run folder. A watcher thread turns ``cancel.request``
in the folder, or the parent's disappearance, into the trainer's cancel flag.

Exit status: 0 finished or stopped, 2 failed (the message is in the run folder), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from timellm_core.errors import TimeLLMError
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


def train_run(run_dir: str, resume: bool = False, parent_pid: int | None = None) -> int:
    """Train (or resume) the run in ``run_dir``; returns the exit status."""
    try:
        run = RunFolder.open(run_dir)
        config = run.config()
    except TimeLLMError as error:
        print(f"Cannot train {run_dir}: {error}", file=sys.stderr)
        return 2
    cancel = threading.Event()
    watch_for_stop(run, cancel, parent_pid)
    try:
        from timellm_core.training.trainer import Trainer

        result = Trainer(config, run=run, cancel=cancel, resume=resume).run()
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
    return 0 if result.status in ("finished", "cancelled") else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m timellm_core.training.worker",
                                     description="Train one prepared run folder (the app starts this).")
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    parser.add_argument("--parent", type=int, help="stop when this process (the app's server) is gone")
    args = parser.parse_args(argv)
    return train_run(args.run_dir, resume=args.resume, parent_pid=args.parent)


if __name__ == "__main__":
    sys.exit(main())
