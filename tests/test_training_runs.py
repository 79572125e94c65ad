"""Runs on disk: safe ids, listing, loading back into a model, checks on checkpoints, and resume."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import torch

from test_training_support import StandInModel, forecast_data, small_config
from timellm_core.errors import RunError
from timellm_core.training import checkpoint as ckpt
from timellm_core.training.restore import evaluate_run, load_run_model
from timellm_core.training.runs import (
    RunFolder, check_run_id, find_run, list_runs, load_run, read_events, run_path)
from timellm_core.training.trainer import Trainer


def _train(config, runs_dir, model=None, **options):
    run = RunFolder.create(config, runs_dir)
    Trainer(config, run=run, model=model or StandInModel(), data=forecast_data(), **options).run()
    return run


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One epoch of the real TimeLLM on tiny GPT-2 (shared by the load-back tests)."""
    config = small_config(train_epochs=1, max_train_windows=8, max_eval_windows=12)
    run = RunFolder.create(config, tmp_path_factory.mktemp("runs"))
    Trainer(config, run=run, data=forecast_data()).run()
    return run.path


@pytest.mark.parametrize("bad", ["..", ".", "../escape", "a/b", "/etc", "a\\b", "", "x" * 200, "run id"])
def test_run_ids_cannot_leave_the_runs_folder(tmp_path, bad):
    with pytest.raises(RunError):
        check_run_id(bad)
    with pytest.raises(RunError):
        run_path(tmp_path, bad)
    with pytest.raises(RunError):
        RunFolder.create(small_config(), tmp_path, run_id=bad)
    assert list(tmp_path.iterdir()) == []


def test_find_run_accepts_a_folder_or_an_id_and_nothing_else(tmp_path):
    run = RunFolder.create(small_config(), tmp_path, run_id="my-run_1.0")
    assert find_run("my-run_1.0", tmp_path) == run.path.resolve()
    assert find_run(str(run.path)) == run.path.resolve()
    with pytest.raises(RunError, match="runs list"):
        find_run("../my-run_1.0", tmp_path / "sub")
    with pytest.raises(RunError, match="already exists"):
        RunFolder.create(small_config(), tmp_path, run_id="my-run_1.0")


def test_runs_dir_comes_from_the_environment(tmp_path, monkeypatch):
    from timellm_core.training.runs import default_runs_dir

    monkeypatch.setenv("TIMELLM_RUNS", str(tmp_path / "elsewhere"))
    assert default_runs_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("TIMELLM_RUNS")
    assert default_runs_dir().name == "runs"


def test_list_runs_newest_first_with_broken_folders_listed(tmp_path):
    older = _train(small_config(train_epochs=1), tmp_path)
    newer = RunFolder.create(small_config(), tmp_path, run_id="queued-run")
    newer.update(created=json.loads((older.path / "config.json").read_text())["created"] + 10)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "not-a-run").mkdir()
    runs = list_runs(tmp_path)
    assert [r.run_id for r in runs[:2]] == ["queued-run", older.run_id]
    assert runs[-1].run_id == "broken" and runs[-1].status == "corrupt" and "not valid JSON" in runs[-1].problem
    assert runs[1].status == "finished" and runs[1].summary()["test_mse"] is not None
    assert runs[0].status == "queued"  # its writer (this process) is alive
    assert list_runs(tmp_path / "missing") == []


def test_a_killed_writer_leaves_readable_events_and_an_interrupted_status(tmp_path):
    run = RunFolder.create(small_config(), tmp_path)
    run.append_event({"type": "step", "time": 1.0, "loss": 0.5})
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"type": "step", "time": 2.0, "lo')  # torn by a kill -9
    run.update(status="running", pid=_dead_pid())
    run._info["pid"] = _dead_pid()
    run._write_info()
    assert [e["time"] for e in read_events(run.path / "metrics.jsonl")] == [1.0]
    assert load_run(run.path).status == "interrupted"


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_resume_continues_from_the_checkpoint_with_the_same_history(tmp_path):
    config = small_config(train_epochs=3, lradj="type1")
    straight = _train(config, tmp_path / "a", model=StandInModel(seed=1))

    cancel = threading.Event()

    def stop_after_epoch_two(event):
        if event["type"] == "checkpoint" and event["kind"] == "last" and event["epoch"] == 2:
            cancel.set()

    interrupted = _train(config, tmp_path / "b", model=StandInModel(seed=1), on_event=stop_after_epoch_two,
                         cancel=cancel)
    assert load_run(interrupted.path).status == "cancelled"
    assert load_run(interrupted.path).epochs_done == 2

    reopened = RunFolder.open(interrupted.path)
    result = Trainer(reopened.config(), run=reopened, model=StandInModel(seed=99), data=forecast_data(),
                     resume=True).run()
    assert result.status == "finished" and result.epochs_done == 3

    def epochs(path):
        return [(e["epoch"], e["train_loss"], e["val_mse"], e["lr"]) for e in read_events(path / "metrics.jsonl")
                if e["type"] == "epoch"]

    resumed_events = read_events(interrupted.path / "metrics.jsonl")
    kinds = [e["type"] for e in resumed_events]
    assert kinds.count("started") == 1 and kinds.count("resumed") == 1 and "cancelled" not in kinds
    assert kinds.index("resumed") > kinds.index("epoch")
    assert [e[0] for e in epochs(interrupted.path)] == [1, 2, 3]
    # Same weights, optimizer, schedule (type1: lr/4 in epoch 3) and data order: the same numbers.
    for mine, theirs in zip(epochs(interrupted.path), epochs(straight.path)):
        assert mine == pytest.approx(theirs, rel=1e-6)
    steps = [e["global_step"] for e in resumed_events if e["type"] == "step"]
    assert steps == list(range(1, len(steps) + 1))
    with pytest.raises(RunError, match="already finished"):
        Trainer(reopened.config(), run=RunFolder.open(interrupted.path), model=StandInModel(),
                data=forecast_data(), resume=True).run()


def test_resume_without_a_checkpoint_says_so(tmp_path):
    run = RunFolder.create(small_config(), tmp_path)
    with pytest.raises(RunError, match="not finished an epoch"):
        Trainer(run.config(), run=run, model=StandInModel(), data=forecast_data(), resume=True).run()


def test_a_checkpoint_from_another_configuration_is_refused(tmp_path):
    run = _train(small_config(train_epochs=1), tmp_path)
    weights = run.path / "model.safetensors"
    expected = StandInModel().trainable_state_dict()
    ckpt.load_model_weights(weights, run.config(), expected)  # its own config fits
    other = run.config()
    other.model.d_model = 64
    with pytest.raises(RunError, match="different configuration"):
        ckpt.load_model_weights(weights, other, expected)
    misshaped = StandInModel(seq_len=16).trainable_state_dict()
    with pytest.raises(RunError, match="does not fit.*weight"):
        ckpt.load_model_weights(weights, run.config(), misshaped)


def test_load_run_model_gives_back_the_trained_forecasts(real_run):
    model, data = load_run_model(real_run)
    predictions = np.load(real_run / "predictions.npz")
    windows = data.windows("test")
    x = torch.stack([windows[int(i)][0] for i in predictions["window_index"][:4]])
    with torch.no_grad():
        forecast = model(x).numpy()
    assert np.allclose(forecast, predictions["forecast"][:4], atol=1e-5)
    metrics = evaluate_run(real_run, model=model, data=data)
    saved = json.loads((real_run / "test_metrics.json").read_text())
    assert metrics["test_mse"] == pytest.approx(saved["test_mse"], rel=1e-5)
    assert metrics["test_windows"] == saved["test_windows"] == 12


def test_load_run_model_refuses_missing_corrupt_or_mismatched_weights(real_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(real_run, copy)
    config = json.loads((copy / "config.json").read_text())
    config["config"]["model"]["d_ff"] = 32
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="different configuration"):
        load_run_model(copy)

    shutil.rmtree(copy)
    shutil.copytree(real_run, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: os.path.getsize(weights) // 2])
    with pytest.raises(RunError, match="corrupt"):
        load_run_model(copy)
    weights.unlink()
    with pytest.raises(RunError, match="no model.safetensors"):
        load_run_model(copy)
