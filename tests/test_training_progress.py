"""Honest progress: evaluation passes and the final test count as work, the phase is named, the ETA
does not jump when a validation pass starts, and a stop says what was kept."""

from __future__ import annotations

import pytest

from test_training_support import StandInModel, forecast_data, small_config
from timellm_core.training.job import TrainingJob
from timellm_core.training.progress import JobProgress, progress_of, stop_report

PLAN = dict(epochs=2, steps_per_epoch=4, total_steps=8, val_batches=2, test_batches=4, test_each_epoch=False,
            batch_size=8, eval_batch_size=8)


class Clock:
    """Events one second apart per training step, half a second per evaluation batch."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.tracker = JobProgress()

    def add(self, kind: str, seconds: float = 0.0, **fields) -> None:
        self.now += seconds
        self.tracker.add({"type": kind, "time": self.now, **fields})

    def steps(self, epoch: int, count: int = 4) -> None:
        for step in range(1, count + 1):
            self.add("step", 1.0, epoch=epoch, step=step, global_step=(epoch - 1) * 4 + step)

    def evaluate(self, epoch: int, split: str, batches: int, final: bool = False) -> None:
        self.add("evaluating", 0.0, epoch=epoch, split=split, final=final, batch=0, batches=batches)
        for batch in range(1, batches + 1):
            self.add("evaluating", 0.5, epoch=epoch, split=split, final=final, batch=batch, batches=batches)

    def view(self):
        return self.tracker.view("running", now=self.now)


def test_the_eta_counts_validation_and_the_final_test_before_they_start():
    clock = Clock()
    clock.add("started", **PLAN)
    clock.steps(1)
    # 4 steps left at 1 s, and 2 + 2 validation batches plus 4 test batches still to come (estimated
    # until one ran at a third of a step each): more than the steps alone.
    first = clock.view()
    assert first.eta_s == pytest.approx(4.0 + 8 * (1 / 3))
    assert first.detail == "Epoch 1 of 2: step 4 of 4"
    clock.evaluate(1, "val", 2)  # measured: 0.5 s a batch
    during = clock.view()
    assert during.eta_s == pytest.approx(4.0 + (2 + 4) * 0.5)
    clock.add("epoch", 0.0, epoch=1)
    clock.steps(2)
    clock.evaluate(2, "val", 2)
    clock.add("epoch", 0.0, epoch=2)
    clock.add("evaluating", 0.0, epoch=2, split="test", final=True, batch=0, batches=4)
    clock.add("evaluating", 1.0, epoch=2, split="test", final=True, batch=2, batches=4)
    testing = clock.view()
    assert testing.phase == "testing"
    assert testing.detail == "Testing the best weights on the test split: batch 2 of 4"
    assert testing.eta_s == pytest.approx(2 * 0.5) and 0.85 < testing.fraction < 0.99  # not "99 %, 0 s left"
    clock.add("finished", 1.0)
    assert clock.tracker.view("finished").fraction == 1.0


def test_the_eta_does_not_jump_when_a_validation_pass_begins():
    clock = Clock()
    clock.add("started", **{**PLAN, "eval_batch_size": 24})  # eval batches 3x a step's windows, forward only
    clock.steps(1)
    before = clock.view().eta_s
    clock.add("evaluating", 0.0, epoch=1, split="val", final=False, batch=0, batches=2)
    clock.add("evaluating", 1.0, epoch=1, split="val", final=False, batch=1, batches=2)  # 1 s, as estimated
    after = clock.view().eta_s
    assert after == pytest.approx(before - 1.0)  # one second of work done, one second less to go


def test_progress_never_moves_backwards_and_names_the_phases():
    clock = Clock()
    assert clock.tracker.view("queued").detail.startswith("Preparing")
    clock.add("started", **PLAN)
    clock.steps(1)
    before = clock.view().fraction
    assert before == pytest.approx(4 / (8 + 8 / 3))
    clock.add("evaluating", 0.0, epoch=1, split="val", final=False, batch=0, batches=2)
    # Far slower than estimated: the work left grows more than the work done, yet the bar holds.
    clock.add("evaluating", 50.0, epoch=1, split="val", final=False, batch=1, batches=2)
    view = clock.view()
    assert view.phase == "validating" and view.detail == "Epoch 1 of 2: validating, batch 1 of 2"
    assert view.fraction == before
    assert view.eta_s == pytest.approx(4 + 7 * 50.0)


def test_early_stopping_shortens_the_plan():
    events = [{"type": "started", "time": 0.0, **PLAN},
              *[{"type": "step", "time": float(i), "epoch": 1, "global_step": i} for i in range(1, 5)],
              {"type": "epoch", "time": 5.0, "epoch": 1},
              {"type": "early_stop", "time": 5.0, "epoch": 1}]
    view = progress_of(events, "running")
    assert 0 < view.eta_s < 4 / 3 + 1e-9  # only the final test is left (4 batches at a third of a step)


def test_a_stop_says_what_was_kept():
    started = {"type": "started", "time": 0.0, **PLAN}
    nothing = stop_report([started, {"type": "step", "time": 1.0}, {"type": "cancelled", "time": 2.0, "epoch": 1}],
                          "run-a")
    assert stop_report([started, {"type": "cancelled", "time": 2.0, "epoch": 0}]) == (
        "Stopped before training began: nothing was kept but the run's settings.")
    assert nothing == ("Stopped during epoch 1, before any epoch had finished: no weights were kept. The run "
                       "folder holds its settings and the losses so far only.")
    kept = stop_report([started, {"type": "epoch", "time": 3.0, "epoch": 1},
                        {"type": "checkpoint", "time": 3.0, "epoch": 1, "kind": "best", "val_mse": 0.25},
                        {"type": "epoch", "time": 4.0, "epoch": 2},
                        {"type": "cancelled", "time": 5.0, "epoch": 3}], "run-b")
    assert kept.startswith("Stopped during epoch 3 after 2 finished epochs. Kept: the weights of epoch 1, the best "
                           "so far (validation MSE 0.2500)")
    assert "--resume run-b" in kept


def test_a_thread_job_reports_the_final_test_as_its_own_phase(tmp_path):
    seen = []
    job_holder = {}

    def hook(call, x):
        job = job_holder.get("job")
        if job is not None:
            seen.append(job.view.phase)

    job = TrainingJob(small_config(train_epochs=1, max_eval_windows=64, eval_batch_size=4), runs_dir=tmp_path,
                      model=StandInModel(hook=hook), data=forecast_data())
    job_holder["job"] = job
    job.start()
    assert job.wait(60) and job.status == "finished", job.error
    assert {"training", "validating", "testing"} <= set(seen)
    final_test = [e for e in job.events() if e["type"] == "evaluating" and e["final"]]
    assert final_test[0]["batch"] == 0 and final_test[-1]["batch"] == final_test[-1]["batches"] == 16
