"""Bad input and faults through the app (Streamlit AppTest): messages with st.error, never an exception."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from timellm_core.backbones import loading
from timellm_core.config import BackboneConfig, DataConfig, RunConfig, TimeLLMConfig, TrainingConfig
from timellm_core.errors import BackboneError
from timellm_core.training import RunFolder, Trainer, default_registry

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120


def _rows(count: int) -> str:
    start = datetime(2021, 1, 1)
    return "".join(f"{start + timedelta(hours=h):%Y-%m-%d %H:%M:%S},{h % 17},{(h * 7) % 11}\n" for h in range(count))


@pytest.fixture()
def app_env(tmp_path, monkeypatch):
    """Runs and uploads in a private folder; the process-wide job registry idle before and after."""
    monkeypatch.setenv("TIMELLM_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("TIMELLM_UPLOADS", str(tmp_path / "uploads"))
    assert default_registry().active() is None
    yield tmp_path
    for job in default_registry().jobs():
        if job.is_active:
            job.cancel()
            job.wait(120)


def _session(page: str | None = None, dataset: str | None = None, backbone: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    if dataset is not None:
        at.selectbox(key="dataset").set_value(dataset).run()
    if backbone is not None:
        at.selectbox(key="backbone").set_value(backbone).run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _errors(at: AppTest) -> list[str]:
    return [element.value for element in at.error]


# --- uploads ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, fragments", [
    (b"date,a,b\n" + _rows(50).encode() + b"2021-01-03 02:00:00,1,abc\n", ["column 'b' is not numeric", "'abc'"]),
    (b"a,b\n" + b"".join(f"{h},{h}\n".encode() for h in range(50)), ["no date column", "name one 'date'"]),
    (b"date,a\n2021-01-01 00:00:00,1\n", ["1 data row"]),
    (("date,a\n" + "".join(f"2021-01-01 {h:02d}:00:00,{'inf' if h == 3 else h}\n" for h in range(20))).encode(),
     ["infinite", "line 5"]),
    (("date,a\n" + "".join(f"2021-01-01 {h:02d}:00:00,{'' if h == 3 else h}\n" for h in range(20))).encode(),
     ["missing value", "fill-missing option"]),
    (("date,a,b\n" + _rows(80)).encode(), ["Too few rows", "seq_len"]),
    (bytes(range(256)) * 20, ["Save it as UTF-8"]),
])
def test_a_bad_upload_shows_the_reason(app_env, content, fragments):
    at = _session("pages/data.py")
    at.file_uploader(key="data_upload").set_value(("mine.csv", content, "text/csv")).run()
    assert not at.exception, at.exception
    errors = _errors(at)
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), (fragment, errors[0])
    assert at.session_state["dataset"] != "custom"
    assert not (app_env / "uploads").exists() or not any((app_env / "uploads").iterdir())


def test_an_upload_over_the_size_limit_states_the_limit(app_env, monkeypatch):
    from timellm_core.data import csv_checks

    monkeypatch.setattr(csv_checks, "MAX_CSV_BYTES", 2_000)
    at = _session("pages/data.py")
    at.file_uploader(key="data_upload").set_value(("big.csv", ("date,a,b\n" + _rows(400)).encode(), "text/csv")).run()
    assert not at.exception
    [error] = _errors(at)
    assert "MB limit" in error and "shorter or narrower file" in error


def test_gbk_and_utf16_uploads_are_read(app_env):
    for encoding in ("gbk", "utf-16"):
        at = _session("pages/data.py")
        content = ("date,温度,b\n" + _rows(1000)).encode(encoding)  # enough rows for 96 -> 96
        at.file_uploader(key="data_upload").set_value((f"{encoding}.csv", content, "text/csv")).run()
        assert not at.exception and _errors(at) == []
        assert at.session_state["dataset"] == "custom"


# --- forms -----------------------------------------------------------------------------------------

def _fill_train_form(at: AppTest, **values: int) -> None:
    for key, value in values.items():
        at.number_input(key=f"train_form_{key}").set_value(value)


def _press_start(at: AppTest) -> AppTest:
    [button] = [b for b in at.button if b.label == "Start training"]
    return button.click().run()


def test_inconsistent_form_settings_show_an_error_and_start_nothing(app_env):
    at = _session("pages/train.py", dataset="Synthetic", backbone="tiny-llama")
    _fill_train_form(at, seq_len=32, patch_len=64, pred_len=8)
    _press_start(at)
    assert not at.exception, at.exception
    errors = _errors(at)
    assert any("patch_len (64) is longer than seq_len (32)" in e for e in errors), errors
    assert default_registry().active() is None


SMALL = dict(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2, num_prototypes=16,
             epochs=50, batch_size=8, max_train=50, max_eval=50, llm_layers=1)


def test_two_sessions_starting_training_one_runs_the_other_is_told(app_env):
    first = _session("pages/train.py", dataset="Synthetic", backbone="tiny-llama")
    second = _session("pages/train.py", dataset="Synthetic", backbone="tiny-llama")  # its form is ready too
    _fill_train_form(first, **SMALL)
    _fill_train_form(second, **SMALL)
    _press_start(first)
    assert not first.exception, first.exception
    job = default_registry().active()
    assert job is not None
    _press_start(second)  # pressed on a form drawn before the first run started
    assert not second.exception, second.exception
    told = _errors(second) + [info.value for info in second.info]
    assert any(job.run_id in text and "in progress" in text for text in told), told
    assert [j for j in default_registry().jobs() if j.is_active] == [job]
    assert len(list((app_env / "runs").iterdir())) == 1
    # A third visitor sees the run and cannot start another.
    third = _session("pages/train.py", dataset="Synthetic", backbone="tiny-llama")
    assert any("started by another session" in info.value for info in third.info)
    [button] = [b for b in third.button if b.label == "Start training"]
    assert button.disabled
    job.cancel()
    assert job.wait(120) and job.status == "cancelled"


def test_a_job_that_fails_in_the_background_is_shown_as_an_error(app_env):
    at = _session("pages/train.py", dataset="Synthetic", backbone="tiny-llama")
    _fill_train_form(at, **{**SMALL, "seq_len": 512, "pred_len": 1000, "patch_len": 16, "stride": 8})
    _press_start(at)
    assert not at.exception
    job = default_registry().latest()
    assert job.wait(120) and job.status == "failed"
    at.run()
    assert not at.exception
    assert any("Too few rows" in e and "smaller seq_len or pred_len" in e for e in _errors(at)), _errors(at)


def test_starting_with_a_backbone_that_is_not_downloaded(app_env, monkeypatch):
    monkeypatch.setenv("TIMELLM_BASE_MODELS", str(app_env / "no-models"))
    at = _session("pages/train.py", dataset="Synthetic", backbone="llama-7b")
    _fill_train_form(at, **SMALL)
    _press_start(at)
    assert not at.exception, at.exception
    errors = _errors(at)
    assert any("is not on this machine" in e and "backbones fetch llama-7b" in e for e in errors), errors
    assert default_registry().active() is None


# --- backbone loading ------------------------------------------------------------------------------

def test_a_backbone_load_that_fails_halfway_is_not_cached(app_env, monkeypatch):
    real = loading.build_tiny_model
    calls = {"n": 0}

    def fails_once(*args, **kwargs):
        calls["n"] += 1
        model = real(*args, **kwargs)  # built, then the load breaks before it is frozen and returned
        if calls["n"] == 1:
            raise BackboneError("Loading tiny-bert failed halfway (simulated read error). Try again.")
        return model

    monkeypatch.setattr(loading, "build_tiny_model", fails_once)
    import streamlit

    streamlit.cache_resource.clear()  # an earlier test may have cached this very backbone
    at = _session("pages/backbone.py", backbone="tiny-bert")
    at.number_input(key="backbone_layers").set_value(2)
    at.button(key="backbone_load").click().run()
    assert not at.exception, at.exception
    assert any("failed halfway" in e for e in _errors(at)), _errors(at)
    at.run()  # the same page again: the cache did not keep the failure or a half-built model
    assert not at.exception and _errors(at) == []
    assert any("Loaded tiny-bert" in s.value for s in at.success)
    assert calls["n"] == 2


def test_4bit_without_a_usable_bitsandbytes_in_the_app(app_env, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # the import fails, as on an unsupported machine
    at = _session("pages/backbone.py", backbone="tiny-qwen2")
    at.toggle(key="backbone_4bit").set_value(True).run()
    at.button(key="backbone_load").click().run()
    assert not at.exception, at.exception
    errors = _errors(at)
    assert any("bitsandbytes" in e and "load_in_4bit=False" in e for e in errors), errors


# --- run folders -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One finished tiny run, trained once; each test corrupts its own copy."""
    config = RunConfig(
        data=DataConfig(name="Synthetic"), backbone=BackboneConfig(name="tiny-llama", llm_layers=1),
        model=TimeLLMConfig(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2,
                            num_prototypes=16),
        training=TrainingConfig(batch_size=8, eval_batch_size=64, train_epochs=1, max_train_windows=16,
                                max_eval_windows=16, device="cpu", test_each_epoch=False))
    run = RunFolder.create(config, tmp_path_factory.mktemp("trained"))
    assert Trainer(config, run=run).run().status == "finished"
    return run.path


@pytest.fixture()
def finished_run(app_env, trained_run) -> Path:
    copy = app_env / "runs" / trained_run.name
    shutil.copytree(trained_run, copy)
    return copy


def _open_run(run: Path, page: str) -> AppTest:
    from explorer_ui import jobs

    jobs.refresh_runs()
    at = _session()
    at.selectbox(key="run_id").set_value(run.name).run()
    at.switch_page(page).run()
    return at


def test_a_corrupt_checkpoint_in_the_app(finished_run):
    (finished_run / "model.safetensors").write_bytes(b"\x00not safetensors" * 50)
    at = _open_run(finished_run, "pages/forecast.py")
    assert not at.exception, at.exception
    assert any("corrupt or not a safetensors file" in e for e in _errors(at)), _errors(at)


def test_a_checkpoint_from_another_configuration_in_the_app(finished_run):
    import json

    info = json.loads((finished_run / "config.json").read_text())
    info["config"]["model"]["d_model"] = 12
    (finished_run / "config.json").write_text(json.dumps(info))
    at = _open_run(finished_run, "pages/patches.py")
    assert not at.exception, at.exception
    assert any("different configuration" in e for e in _errors(at)), _errors(at)


def test_corrupt_predictions_in_the_app(finished_run):
    (finished_run / "predictions.npz").write_bytes(b"PK\x03\x04 truncated zip")
    at = _open_run(finished_run, "pages/forecast.py")
    assert not at.exception, at.exception
    assert any("predictions.npz" in e and "damaged" in e for e in _errors(at)), _errors(at)
