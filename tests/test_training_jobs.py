"""Background jobs: cancel within one step, one job at a time, failures as a status, progress for other threads."""

from __future__ import annotations

import json
import time

import pytest
import torch

from test_training_support import StandInModel, forecast_data, read_lines, small_config
from timellm_core.errors import TrainingError
from timellm_core.training.job import JobRegistry, TrainingJob
from timellm_core.training.runs import load_run

WAIT_S = 60


def _wait_for(condition, timeout: float = WAIT_S) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def _slow_model(delay: float = 0.02) -> StandInModel:
    return StandInModel(hook=lambda call, x: time.sleep(delay))


def _step_count(job: TrainingJob) -> int:
    return sum(1 for event in job.events() if event["type"] == "step")


def test_cancel_stops_within_one_step_and_leaves_a_consistent_run(tmp_path):
    registry = JobRegistry()
    job = registry.start(small_config(train_epochs=200), runs_dir=tmp_path, model=_slow_model(),
                         data=forecast_data())
    _wait_for(lambda: _step_count(job) >= 6)  # past the first epoch (4 steps): a checkpoint exists
    job.cancel()
    steps_at_cancel = _step_count(job)
    assert job.wait(WAIT_S)
    assert job.status == "cancelled" and job.error is None
    assert _step_count(job) <= steps_at_cancel + 1  # at most the step that was running
    assert job.progress < 1.0 and job.eta_s == 0.0

    run = tmp_path / job.run_id
    lines = read_lines(run / "metrics.jsonl")
    events = [json.loads(line) for line in lines]  # every line is complete JSON
    assert events[-1]["type"] == "cancelled"
    assert [e["type"] for e in events].count("cancelled") == 1
    assert json.loads((run / "config.json").read_text())["status"] == "cancelled"
    info = load_run(run)
    assert info.status == "cancelled" and info.has_checkpoint and info.has_model and info.test_metrics is None
    assert len(info.events) == len(job.events())


def test_cancel_inside_evaluation_takes_effect_before_the_next_batch(tmp_path):
    model = StandInModel()
    job_holder = {}
    evaluation_calls = []

    def hook(call: int, x: torch.Tensor) -> None:
        if not model.training:
            evaluation_calls.append(call)
            job_holder["job"].cancel()

    model.hook = hook
    job = TrainingJob(small_config(train_epochs=1, max_eval_windows=64, eval_batch_size=4), runs_dir=tmp_path,
                      model=model, data=forecast_data())
    job_holder["job"] = job
    job.start()
    assert job.wait(WAIT_S)
    assert job.status == "cancelled"
    assert len(evaluation_calls) == 1  # 16 evaluation batches were due; one ran


def test_a_second_job_is_refused_while_one_runs(tmp_path):
    registry = JobRegistry()
    first = registry.start(small_config(train_epochs=200), runs_dir=tmp_path, model=_slow_model(),
                           data=forecast_data())
    try:
        with pytest.raises(TrainingError, match=rf"in progress: {first.run_id} .*stop it first"):
            registry.start(small_config(), runs_dir=tmp_path, model=StandInModel(), data=forecast_data())
        assert registry.active() is first and len(registry.jobs()) == 1
    finally:
        first.cancel()
        assert first.wait(WAIT_S)
    second = registry.start(small_config(train_epochs=1), runs_dir=tmp_path, model=StandInModel(),
                            data=forecast_data())
    assert second.wait(WAIT_S) and second.status == "finished"
    assert registry.latest() is second and registry.get(first.run_id) is first


def test_an_exception_in_a_step_ends_the_job_as_failed_with_its_message(tmp_path):
    def fault(call: int, x: torch.Tensor) -> None:
        if call == 3:
            raise ValueError("the input went missing")

    job = JobRegistry().start(small_config(), runs_dir=tmp_path, model=StandInModel(hook=fault), data=forecast_data())
    assert job.wait(WAIT_S)
    assert job.status == "failed"
    assert "epoch 1, step 3" in job.error and "the input went missing" in job.error
    assert job.events()[-1] == {**job.events()[-1], "type": "failed", "message": job.error}
    assert load_run(job.run_dir).status == "failed"


def test_a_bad_setting_fails_before_training_with_a_readable_message(tmp_path):
    config = small_config()
    config.training.device = "tpu"  # validated when the accelerator is made
    job = TrainingJob(config, runs_dir=tmp_path, model=StandInModel(), data=forecast_data()).start()
    assert job.wait(WAIT_S)
    assert job.status == "failed" and "device must be auto, cpu, cuda" in job.error
    assert load_run(job.run_dir).error == job.error


def test_progress_eta_and_events_are_safe_to_read_while_running(tmp_path):
    job = JobRegistry().start(small_config(train_epochs=3), runs_dir=tmp_path, model=_slow_model(0.01),
                              data=forecast_data())
    seen_progress = []
    while not job.wait(0.02):
        seen_progress.append(job.progress)
        events = job.events()
        if events:
            events[0]["type"] = "tampered"  # a copy: the job's own list is unaffected
        assert job.events()[0]["type"] == "started" if events else True
    assert job.status == "finished" and job.progress == 1.0
    assert seen_progress == sorted(seen_progress) and 0.0 < max(seen_progress) < 1.0
    count = job.event_count()
    assert job.events(since=count - 1)[0]["type"] == "finished"
    assert job.test_metrics["test_windows"] == 16


def test_eta_is_estimated_from_the_pace_so_far(tmp_path):
    job = JobRegistry().start(small_config(train_epochs=100), runs_dir=tmp_path, model=_slow_model(0.02),
                              data=forecast_data())
    try:
        _wait_for(lambda: _step_count(job) >= 5)
        eta = job.eta_s
        remaining_steps = 400 - _step_count(job)
        assert eta is not None and remaining_steps * 0.01 < eta < remaining_steps * 2.0
    finally:
        job.cancel()
        job.wait(WAIT_S)


def test_a_loader_callable_provides_the_backbone(tmp_path):
    from timellm_core.backbones import load_backbone

    calls = []

    def cached_loader(backbone_config):
        calls.append(backbone_config.name)
        return load_backbone(backbone_config, device="cpu")

    config = small_config(train_epochs=1, max_train_windows=8, max_eval_windows=8)
    job = JobRegistry().start(config, runs_dir=tmp_path, backbone=cached_loader, data=forecast_data())
    assert job.wait(WAIT_S * 2), job.status
    assert job.status == "finished", job.error
    assert calls == ["tiny-gpt2"]


def test_a_job_resumes_a_cancelled_run_in_the_same_folder(tmp_path):
    registry = JobRegistry()
    first = registry.start(small_config(train_epochs=3), runs_dir=tmp_path, model=_slow_model(),
                           data=forecast_data())
    _wait_for(lambda: any(e["type"] == "checkpoint" and e["kind"] == "last" for e in first.events()))
    first.cancel()
    assert first.wait(WAIT_S) and first.status == "cancelled"
    done = load_run(first.run_dir).epochs_done
    assert done >= 1

    resumed = registry.start(resume=first.run_id, runs_dir=tmp_path, model=StandInModel(), data=forecast_data())
    assert resumed.run_dir == first.run_dir
    assert resumed.wait(WAIT_S) and resumed.status == "finished", resumed.error
    resumed_event = next(e for e in resumed.events() if e["type"] == "resumed")
    assert resumed_event["from_epoch"] == done
    assert [e["epoch"] for e in load_run(first.run_dir).epoch_events()] == [1, 2, 3]
