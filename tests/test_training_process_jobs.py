"""Training in a child process (what the app does): the same Trainer and run folder as the terminal,
stop through the run folder, failures and crashes as a readable status, the one-job rule kept."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from test_app_support import tiny_run_config, train_tiny_run
from timellm_core.errors import TrainingError
from timellm_core.training.job import JobRegistry
from timellm_core.training.process_job import ProcessTrainingJob
from timellm_core.training.progress import stop_report
from timellm_core.training.runs import CANCEL_FILE, RunFolder, load_run
from timellm_core.training.worker import watch_for_stop

WAIT_S = 240  # a child imports torch and transformers first: seconds on a busy 2-core machine


def _wait_for(condition, timeout: float = WAIT_S) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _types(job) -> list[str]:
    return [event["type"] for event in job.events()]


def test_a_process_job_trains_the_same_run_as_the_terminal_in_another_process(tmp_path):
    config = tiny_run_config(train_epochs=2)
    job = JobRegistry().start(config, runs_dir=tmp_path / "child", process=True)
    assert isinstance(job, ProcessTrainingJob) and job.pid not in (None, os.getpid())
    assert job.is_active
    assert job.wait(WAIT_S) and job.status == "finished", job.error
    info = load_run(job.run_dir)
    assert info.status == "finished" and info.has_model and info.has_predictions
    assert json.loads((tmp_path / "child" / job.run_id / "config.json").read_text())["pid"] == job.pid
    assert job.test_metrics == info.test_metrics and job.progress == 1.0 and job.eta_s == 0.0
    assert job.result.status == "finished" and job.result.epochs_done == 2
    kinds = _types(job)
    assert kinds[0] == "started" and kinds[-1] == "finished" and kinds.count("epoch") == 2
    assert "evaluating" in kinds  # evaluation passes report their progress too
    # The training process scored the baselines on the same test windows before it ended.
    assert set(info.baselines["forecasters"]) == {"naive", "seasonal_naive", "dlinear"}
    assert info.baselines["forecasters"]["naive"]["windows"] == info.test_metrics["test_windows"]

    # The same settings trained here in this process give the same numbers: it is the same Trainer.
    here = train_tiny_run(tmp_path / "here", tiny_run_config(train_epochs=2))
    same = load_run(tmp_path / "here" / here).test_metrics
    assert same["test_mse"] == pytest.approx(info.test_metrics["test_mse"], rel=1e-5)


def test_stop_reaches_the_child_through_the_run_folder_and_one_job_runs_at_a_time(tmp_path):
    registry = JobRegistry()
    job = registry.start(tiny_run_config(train_epochs=50, max_train_windows=400), runs_dir=tmp_path, process=True)
    _wait_for(lambda: "step" in _types(job))
    with pytest.raises(TrainingError, match=rf"in progress: {job.run_id} "):
        registry.start(tiny_run_config(), runs_dir=tmp_path, process=True)
    job.cancel()
    assert (tmp_path / job.run_id / CANCEL_FILE).exists()
    assert job.wait(60), "the child did not stop"
    assert job.status == "cancelled" and job.error is None
    assert not (tmp_path / job.run_id / CANCEL_FILE).exists()  # a later resume is not stopped by it
    info = load_run(job.run_dir)
    assert info.status == "cancelled" and info.test_metrics is None
    assert info.epochs_done < 50
    report = stop_report(job.events(), job.run_id)
    if info.has_model:
        assert "Kept: the weights of epoch" in report
    else:
        assert "no weights were kept" in report
    finished = registry.start(tiny_run_config(), runs_dir=tmp_path, process=True)  # the next run may start
    assert finished.wait(WAIT_S) and finished.status == "finished", finished.error


def test_a_failure_in_the_child_reaches_the_job_and_the_run_folder(tmp_path):
    config = tiny_run_config()
    config.training.device = "tpu"  # refused when the child makes its accelerator
    job = JobRegistry().start(config, runs_dir=tmp_path, process=True)
    assert job.wait(WAIT_S)
    assert job.status == "failed" and "device must be auto, cpu, cuda" in job.error
    assert load_run(job.run_dir).error == job.error and load_run(job.run_dir).status == "failed"


def test_a_child_killed_without_a_word_is_reported_as_failed(tmp_path):
    job = JobRegistry().start(tiny_run_config(train_epochs=50, max_train_windows=400), runs_dir=tmp_path,
                              process=True)
    _wait_for(lambda: "started" in _types(job))
    os.kill(job.pid, signal.SIGKILL)
    assert job.wait(60)
    assert job.status == "failed"
    assert "ended without finishing (exit status -9)" in job.error
    info = load_run(job.run_dir)
    assert info.status == "failed" and info.error == job.error


def test_data_or_a_model_in_memory_cannot_cross_to_a_process(tmp_path):
    with pytest.raises(TrainingError, match="thread job"):
        ProcessTrainingJob(tiny_run_config(), runs_dir=tmp_path, model=object())


def test_the_stop_watcher_reacts_to_the_cancel_file_and_to_a_lost_parent(tmp_path):
    run = RunFolder.create(tiny_run_config(), tmp_path)
    cancel = threading.Event()
    watcher = watch_for_stop(run, cancel, parent_pid=os.getppid())
    time.sleep(0.5)
    assert not cancel.is_set()  # nothing asked, parent alive
    run.request_cancel()
    watcher.join(5)
    assert cancel.is_set()
    run.clear_cancel()
    orphaned = threading.Event()
    watch_for_stop(run, orphaned, parent_pid=os.getppid() + 100_000).join(5)  # not our parent: it is "gone"
    assert orphaned.is_set()


def test_a_process_job_resumes_a_stopped_run_and_reads_the_rewritten_events(tmp_path):
    registry = JobRegistry()
    first = registry.start(tiny_run_config(train_epochs=3, max_train_windows=400), runs_dir=tmp_path, process=True)
    _wait_for(lambda: any(e["type"] == "checkpoint" and e.get("kind") == "last" for e in first.events()))
    first.cancel()
    assert first.wait(60) and first.status == "cancelled"
    done = load_run(first.run_dir).epochs_done
    assert "Kept: the weights of epoch" in stop_report(first.events(), first.run_id)

    resumed = registry.start(resume=first.run_id, runs_dir=tmp_path, process=True)
    assert resumed.run_dir == first.run_dir
    assert resumed.wait(WAIT_S) and resumed.status == "finished", resumed.error
    kinds = _types(resumed)
    assert "cancelled" not in kinds  # the resume rewrote metrics.jsonl up to the checkpoint; read afresh
    assert next(e for e in resumed.events() if e["type"] == "resumed")["from_epoch"] == done
    assert [e["epoch"] for e in load_run(first.run_dir).epoch_events()] == [1, 2, 3]
