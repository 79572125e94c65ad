"""The Train page: a run started from the form trains in the background, the live charts fill in,
a second session is told clearly that a run is in progress, Stop stops it, and the history overlays runs."""

from __future__ import annotations

import os
import time

import pytest

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, assert_clean, frame_with, no_job_running, open_page, plotly_specs, start_app, texts, train_tiny_run,
    tiny_run_config)
from timellm_core.training import default_registry

SMALL = dict(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2, num_prototypes=20,
             llm_layers=1, epochs=2, batch_size=8, max_train=32, max_eval=16)
START = "FormSubmitter:train_form-Start training"


def _fill_form(at, **values):
    for name, value in {**SMALL, **values}.items():
        at.number_input(key=f"train_form_{name}").set_value(value)


def _wait_for(job, timeout_s: float = 240.0) -> None:
    assert job.wait(timeout_s), f"job {job.run_id} still {job.status} after {timeout_s} s"


def test_start_a_run_from_the_form_and_watch_it_finish(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "train")
    _fill_form(at)
    at.checkbox(key="train_form_test_each_epoch").check()
    assert at.checkbox(key="train_form_fast").value is False  # exact by default
    at.button(key=START).click().run()
    assert_clean(at)
    run_id = at.session_state["train_my_job"]
    job = default_registry().get(run_id)
    assert job is not None and job.config.model.seq_len == 32 and job.config.backbone.llm_layers == 1
    assert not job.config.model.fast
    _wait_for(job)
    assert job.status == "finished", job.error
    at.run()
    assert_clean(at)
    assert [s.value for s in at.success][0].startswith("Finished")
    titles = [spec["layout"].get("title", {}).get("text") for spec in plotly_specs(at)]
    assert "Loss per step" in titles and "Per epoch" in titles
    per_epoch = next(s for s in plotly_specs(at) if s["layout"].get("title", {}).get("text") == "Per epoch")
    assert [trace["name"] for trace in per_epoch["data"]] == ["train", "val", "test"]  # tested every epoch
    steps = next(s for s in plotly_specs(at) if s["layout"].get("title", {}).get("text") == "Loss per step")
    assert len(steps["data"][0]["x"]) == 2 * 4  # 2 epochs x 32 windows / batch 8
    assert {m.label for m in at.metric} >= {"test MSE (scaled)", "test MAE (scaled)"}
    history = frame_with(at, "best val MSE")
    assert list(history["run"]) == [run_id] and history["status"].iloc[0] == "finished"
    picker = at.selectbox(key="run_id")
    assert "ETTh1 · tiny-gpt2 · 32→8" in picker.options[1]  # the sidebar offers the new run
    picker.select_index(1).run()
    assert at.session_state["run_id"] == run_id


def test_a_second_session_sees_the_run_but_only_the_first_can_stop_it(app_env):
    first = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "train")
    _fill_form(first, epochs=50, max_train=400)  # long enough to still run while the second session looks
    first.button(key=START).click().run()
    job = default_registry().get(first.session_state["train_my_job"])
    assert job.is_active and job.pid != os.getpid()  # trained in a process of its own
    deadline = time.time() + 240
    while not any(e["type"] == "step" for e in job.events()) and time.time() < deadline:
        time.sleep(0.1)
    second = open_page(start_app(dataset="ETTh1", backbone="tiny-llama"), "train")
    assert f"A run is in progress ({job.run_id}, started by another session" in texts(second)
    assert second.button(key=START).disabled  # the form cannot start a second run
    assert "started in another session" in texts(second)
    assert "Only the session that started this run can stop it." in texts(second)
    assert not [b for b in second.button if b.key == "train_stop"]  # the run belongs to the first session
    assert len(second.get("progress")) >= 1  # but its progress is shown
    first.run()
    assert [b for b in first.button if b.key == "train_stop"]
    first.button(key="train_stop").click().run()
    _wait_for(job)
    assert job.status == "cancelled"
    first.run()
    assert_clean(first)
    stopped = [w.value for w in first.warning]
    assert stopped and stopped[0].startswith("Stopped during epoch")
    kept = (app_env / job.run_id / "model.safetensors").exists()
    assert ("Kept: the weights of epoch" if kept else "no weights were kept") in stopped[0]


def test_history_overlays_runs_such_as_the_llm_ablation(app_env):
    frozen = train_tiny_run(app_env, tiny_run_config(train_epochs=2))
    ablation_config = tiny_run_config(train_epochs=2)
    ablation_config.model.llm_mode = "none"
    time.sleep(1.1)  # run ids carry the second they were made
    ablation = train_tiny_run(app_env, ablation_config)
    at = open_page(start_app(dataset=None, backbone=None), "train")
    assert "Choose a dataset and a backbone" in texts(at)  # the history shows with nothing chosen
    history = frame_with(at, "llm_mode")
    assert set(history["llm_mode"]) == {"frozen", "none"}
    overlay = next(s for s in plotly_specs(at) if "by run" in s["layout"]["title"]["text"])
    assert len(overlay["data"]) == 2 and all(len(trace["y"]) == 2 for trace in overlay["data"])
    assert {frozen, ablation} == {trace["name"].split(" · ")[0] for trace in overlay["data"]}


def test_fast_mode_from_the_form_reaches_the_run(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-llama"), "train")
    _fill_form(at, epochs=1)
    at.checkbox(key="train_form_fast").check()
    at.button(key=START).click().run()
    assert_clean(at)
    job = default_registry().get(at.session_state["train_my_job"])
    assert job is not None and job.config.model.fast
    _wait_for(job)
    assert job.status == "finished", job.error


def test_loading_a_preset_selects_its_backbone_when_it_is_here(app_env, monkeypatch, tmp_path):
    from timellm_core.backbones import save_tiny_backbone

    models = tmp_path / "models"
    save_tiny_backbone("tiny-qwen2", models / "Qwen2.5-Coder-0.5B-Instruct")  # stands in for the real folder
    monkeypatch.setenv("TIMELLM_BASE_MODELS", str(models))
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "train")
    at.selectbox(key="train_preset").set_value("qwen-cpu")
    at.button(key="train_load_preset").click().run()
    assert_clean(at)
    from explorer_ui import shared

    assert at.session_state[shared.BACKBONE] == "qwen2.5-0.5b"
    working = at.session_state[shared.WORKING_CONFIG]
    assert working.backbone.load_in_4bit and working.backbone.llm_layers == 2 and working.data.features == "S"
    assert at.number_input(key="train_form_llm_layers").value == 2

    # A preset whose backbone is not here (LLaMA-7B) leaves the sidebar's choice alone.
    at.selectbox(key="train_preset").set_value("paper-etth1-96")
    at.button(key="train_load_preset").click().run()
    assert at.session_state[shared.BACKBONE] == "qwen2.5-0.5b"


def test_the_target_list_offers_the_datasets_channels_and_follows_the_dataset(app_env, monkeypatch, tmp_path):
    from explorer_ui import shared
    from timellm_core.backbones import save_tiny_backbone

    models = tmp_path / "models"
    save_tiny_backbone("tiny-qwen2", models / "Qwen2.5-Coder-0.5B-Instruct")
    monkeypatch.setenv("TIMELLM_BASE_MODELS", str(models))
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "train")
    target = at.selectbox(key="train_form_target")
    assert target.options == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"] and target.value == "OT"
    at.selectbox(key="train_preset").set_value("qwen-cpu")
    at.button(key="train_load_preset").click().run()
    assert_clean(at)
    assert at.selectbox(key="train_form_target").value == "HULL"  # qwen-cpu forecasts HULL alone

    # Synthetic has no HULL: the list and the working settings fall back to its own target, OT.
    at.session_state[shared.DATASET] = "Synthetic"
    at.run()
    assert_clean(at)
    target = at.selectbox(key="train_form_target")
    assert target.options[-1] == "OT" and "HULL" not in target.options and target.value == "OT"

    # A run started from the form forecasts the chosen channel.
    fresh = open_page(start_app(dataset="Synthetic", backbone="tiny-gpt2"), "train")
    _fill_form(fresh)
    fresh.selectbox(key="train_form_features").set_value("S")
    fresh.selectbox(key="train_form_target").set_value("daily")
    fresh.button(key=START).click().run()
    assert_clean(fresh)
    job = default_registry().get(fresh.session_state["train_my_job"])
    assert (job.config.data.name, job.config.data.features, job.config.data.target) == ("Synthetic", "S", "daily")
    _wait_for(job)
    assert job.status == "finished", job.error


def test_runs_of_other_target_channels_are_other_settings():
    from explorer_ui.train_form import setting_of
    from timellm_core.config import preset

    hull, ot = preset("qwen-cpu"), preset("qwen-cpu")
    ot.data.target = "OT"
    assert setting_of(hull) == "ETTh1 · features S HULL · 96→24" and setting_of(ot) != setting_of(hull)
    assert setting_of(preset("cpu-quick")) == "ETTh1 · features M · 96→96"  # M forecasts every channel
    assert setting_of(preset("m4-hourly")) == "m4 (Hourly) · features S · 96→48"
