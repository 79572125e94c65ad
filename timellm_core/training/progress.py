"""A job's progress read from its events: the phase, the share of the work done, and the time left.

Both kinds of job (a thread of this process, or a child process writing its run folder) feed their
events to one ``JobProgress``, so the app shows the same figures whichever runs the trainer.

Work is counted in seconds, not in training steps: every epoch is its training steps plus a
validation pass (and a test pass when ``test_each_epoch``), and the run ends with the final test
on the best weights. A training step is timed from ``step`` events; an evaluation batch from
``evaluating`` events once a pass has run, and until then estimated from the step time (a forward
pass only, about a third of forward plus backward, scaled by the batch sizes). So the estimate
counts the passes still to come instead of jumping when one starts, and the bar moves during the
final test instead of waiting at 99 %.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from timellm_core.training.events import Event, last_of_type

FORWARD_SHARE = 1 / 3  # forward-only batch / training step, same batch size (backward costs about 2 forwards)
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class ProgressView:
    """What a page or a progress bar shows: the phase in words, 0..1 done, seconds left (None: unknown)."""

    phase: str
    detail: str
    fraction: float
    eta_s: float | None


class JobProgress:
    """Folds events into the plan (epochs, steps, evaluation batches) and the time each kind of work takes.

    Not thread-safe on its own: the jobs call it under their lock.
    """

    def __init__(self) -> None:
        self.epochs = 0
        self.steps_per_epoch = 0
        self.global_step = 0
        self.epoch = 0
        self.val_batches = 0
        self.test_batches = 0
        self.test_each_epoch = False
        self.batch_ratio = 1.0  # eval_batch_size / batch_size
        self.evaluated_epoch = 0  # the last epoch whose evaluation passes are over
        self.pass_kind: str | None = None  # "val" | "test" | "final" while a pass runs
        self.pass_batch = 0
        self.pass_batches = 0
        self.final_done = False
        self.step_seconds = 0.0
        self.steps_timed = 0
        self.eval_seconds = 0.0
        self.batches_timed = 0
        self.last_time: float | None = None
        self.started = False
        self._shown = 0.0

    # --- events in ------------------------------------------------------------------------------

    def add(self, event: Event) -> None:
        kind, when = event.get("type"), float(event.get("time") or time.time())
        if kind in ("started", "resumed"):
            self.started = True
            self.epochs = int(event.get("epochs") or 0)
            self.steps_per_epoch = int(event.get("steps_per_epoch") or 0)
            self.global_step = int(event.get("global_step") or 0)
            self.epoch = self.evaluated_epoch = int(event.get("from_epoch") or 0)
            self.val_batches = int(event.get("val_batches") or 0)
            self.test_batches = int(event.get("test_batches") or 0)
            self.test_each_epoch = bool(event.get("test_each_epoch"))
            batch, eval_batch = event.get("batch_size"), event.get("eval_batch_size")
            self.batch_ratio = float(eval_batch) / float(batch) if batch and eval_batch else 1.0
        elif kind == "step":
            if self.last_time is not None:
                self.step_seconds += max(0.0, when - self.last_time)
                self.steps_timed += 1
            self.global_step = int(event.get("global_step") or self.global_step)
            self.epoch = int(event.get("epoch") or self.epoch)
            self.pass_kind = None
        elif kind == "evaluating":
            self._add_evaluation(event, when)
        elif kind == "epoch":
            self.evaluated_epoch = int(event.get("epoch") or self.evaluated_epoch)
            self.pass_kind = None
        elif kind == "early_stop":
            self.epochs = int(event.get("epoch") or self.epochs)  # no epochs after this one
        elif kind == "finished":
            self.final_done = True
            self.pass_kind = None
        self.last_time = when

    def _add_evaluation(self, event: Event, when: float) -> None:
        kind = "final" if event.get("final") else str(event.get("split"))
        batch = int(event.get("batch") or 0)
        if kind != self.pass_kind or batch < self.pass_batch:
            self.pass_kind, self.pass_batch = kind, 0  # a new pass begins
        if batch > self.pass_batch and self.last_time is not None:
            self.eval_seconds += max(0.0, when - self.last_time)
            self.batches_timed += batch - self.pass_batch
        self.pass_batch = batch
        self.pass_batches = int(event.get("batches") or 0)
        if event.get("epoch"):
            self.epoch = int(event["epoch"])

    # --- figures out ----------------------------------------------------------------------------

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def _costs(self) -> tuple[float, float] | None:
        """(seconds per training step, seconds per evaluation batch), or None before a step was timed."""
        if not self.steps_timed:
            return None
        step = self.step_seconds / self.steps_timed
        batch = (self.eval_seconds / self.batches_timed if self.batches_timed
                 else step * FORWARD_SHARE * self.batch_ratio)
        return step, batch

    def _batches(self) -> tuple[int, int]:
        """(evaluation batches done, evaluation batches left) over the whole run."""
        per_epoch = self.val_batches + (self.test_batches if self.test_each_epoch else 0)
        done = self.evaluated_epoch * per_epoch
        if self.epoch > self.evaluated_epoch:  # this epoch's passes are under way
            if self.pass_kind == "val":
                done += self.pass_batch
            elif self.pass_kind == "test":
                done += self.val_batches + self.pass_batch
        if self.final_done:
            done += self.test_batches
        elif self.pass_kind == "final":
            done += self.pass_batch
        total = self.epochs * per_epoch + self.test_batches
        return done, max(0, total - done)

    def view(self, status: str, now: float | None = None) -> ProgressView:
        now = time.time() if now is None else now
        phase, detail = self._phase(status)
        if status == "finished":
            return ProgressView(phase, detail, 1.0, 0.0)
        if status not in ACTIVE:
            return ProgressView(phase, detail, self._shown, 0.0)
        costs = self._costs()
        if costs is None:
            return ProgressView(phase, detail, self._shown, None)
        step, batch = costs
        batches_done, batches_left = self._batches()
        done = self.global_step * step + batches_done * batch
        left = max(0, self.total_steps - self.global_step) * step + batches_left * batch
        fraction = done / (done + left) if done + left > 0 else 0.0
        self._shown = max(self._shown, min(fraction, 0.99))  # a bar never moves backwards
        # Time already spent on the unit under way counts against what is left, at most that unit.
        since = max(0.0, now - self.last_time) if self.last_time is not None else 0.0
        unit = step if self.pass_kind is None else batch
        return ProgressView(phase, detail, self._shown, max(0.0, left - min(since, unit)))

    def _phase(self, status: str) -> tuple[str, str]:
        if status == "finished":
            return "finished", "Finished"
        if status == "cancelled":
            return "cancelled", "Stopped"
        if status == "failed":
            return "failed", "Failed"
        if not self.started:
            return "preparing", "Preparing: starting up, loading the data and the backbone"
        if self.final_done:
            return "closing", ("Tested on the test split; scoring naive, seasonal naive and DLinear on the same "
                               "windows, then closing")
        if self.pass_kind == "final":
            return "testing", (f"Testing the best weights on the test split: batch {self.pass_batch} of "
                               f"{self.pass_batches}")
        if self.pass_kind == "val":
            return "validating", (f"Epoch {self.epoch} of {self.epochs}: validating, batch {self.pass_batch} of "
                                  f"{self.pass_batches}")
        if self.pass_kind == "test":
            return "validating", (f"Epoch {self.epoch} of {self.epochs}: testing, batch {self.pass_batch} of "
                                  f"{self.pass_batches}")
        step = self.global_step - (self.epoch - 1) * self.steps_per_epoch if self.epoch else 0
        return "training", f"Epoch {max(self.epoch, 1)} of {self.epochs}: step {max(step, 0)} of {self.steps_per_epoch}"


def stop_report(events: list[Event], run_id: str = "RUN") -> str:
    """What a stopped run kept, in words: nothing, or the weights of the epoch it kept."""
    cancelled = last_of_type(events, "cancelled")
    best = last_of_type([e for e in events if e.get("type") == "checkpoint" and e.get("kind") == "best"],
                        "checkpoint")
    epochs = [e for e in events if e.get("type") == "epoch"]
    where = ""
    if cancelled is not None and cancelled.get("epoch"):
        where = f" during epoch {cancelled['epoch']}"
    if best is None and not any(e.get("type") == "step" for e in events):
        return "Stopped before training began: nothing was kept but the run's settings."
    if best is None:
        return (f"Stopped{where}, before any epoch had finished: no weights were kept. The run folder holds "
                "its settings and the losses so far only.")
    val = best.get("val_mse")
    score = f" (validation MSE {val:.4f})" if isinstance(val, (int, float)) else ""
    return (f"Stopped{where} after {len(epochs)} finished epoch{'s' if len(epochs) != 1 else ''}. Kept: the "
            f"weights of epoch {best['epoch']}, the best so far{score}, which the other pages can use; no final "
            f"test was run. The last epoch's checkpoint lets `python -m timellm_core train --resume {run_id}` continue.")


def progress_of(events: list[Any], status: str) -> ProgressView:
    """The view for a finished list of events (a run read from disk)."""
    tracker = JobProgress()
    for event in events:
        tracker.add(event)
    return tracker.view(status)
