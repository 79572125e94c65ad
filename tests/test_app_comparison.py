"""Comparisons in plain view: a run next to the baselines on Forecast and Train, one window number,
distinct colours, the history led by the final test MSE, the overlay filtered to one setting, the
finished run selected, and one click to the same run without the LLM."""

from __future__ import annotations

import re
import time

import pytest

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, assert_clean, frame_with, no_job_running, open_page, plotly_specs, start_app, texts, tiny_run_config,
    train_tiny_run)
from timellm_core.comparison import compare_run
from timellm_core.training import default_registry
from timellm_core.training.runs import load_run


def _chart(at, title: str) -> dict:
    for spec in plotly_specs(at):
        if title in (spec["layout"].get("title") or {}).get("text", ""):
            return spec
    raise AssertionError(f"no chart titled {title!r}")


def test_forecast_shows_the_comparison_one_window_number_and_distinct_colours(app_env):
    run_id = train_tiny_run(app_env, tiny_run_config(train_epochs=1))
    record = compare_run(app_env / run_id)
    at = open_page(start_app(run_id=run_id), "forecast")
    assert not at.expander  # nothing to open: the comparison is on the page
    table = frame_with(at, "MSE (original units)")
    assert list(table["forecaster"]) == ["Time-LLM (this run)", "naive (last value)", "seasonal naive (period 24)",
                                         "DLinear"]
    assert table["MSE"].iloc[1] == pytest.approx(record["forecasters"]["naive"]["mse"])
    bars = _chart(at, "this run and the baselines")
    assert list(bars["data"][0]["y"]) == pytest.approx(list(table["MSE"]))
    assert any(text.startswith("Test MSE ") for text in (m.value for m in at.markdown))

    slider = at.select_slider(key="forecast_window")
    windows = load_run(app_env / run_id).test_metrics["test_windows"]
    assert len(slider.options) == windows
    slider.set_value(slider.options[3]).run()
    title = _chart(at, "Test window")["layout"]["title"]["text"]
    assert re.search(r"Test window (\d+)", title).group(1) == str(slider.value)  # the same number

    at.multiselect(key="forecast_baselines").set_value(["naive", "seasonal_naive", "dlinear"]).run()
    assert_clean(at)
    colours = [trace["line"]["color"] for trace in _chart(at, "Test window")["data"]]
    assert len(colours) == 6 and len(set(colours)) == 6  # context, truth, forecast and each baseline


def test_a_run_without_a_comparison_gets_one_at_a_click(app_env):
    run_id = train_tiny_run(app_env, tiny_run_config(train_epochs=1))
    at = open_page(start_app(run_id=run_id), "forecast")
    assert "not been compared with the baselines yet" in texts(at)
    at.button(key="forecast_comparison_compare").click().run()
    assert_clean(at)
    assert (app_env / run_id / "baselines.json").is_file()
    assert len(frame_with(at, "MSE (original units)")) == 4


def test_history_leads_with_test_mse_and_the_overlay_keeps_to_one_setting(app_env):
    # As cpu-quick: no test every epoch, so the only test MSE of a run is its final one.
    other = train_tiny_run(app_env, tiny_run_config("ETTm1", train_epochs=1, test_each_epoch=False))
    time.sleep(1.1)  # run ids and creation times differ by the second
    first = train_tiny_run(app_env, tiny_run_config(train_epochs=1, test_each_epoch=False))
    time.sleep(1.1)
    ablation_config = tiny_run_config(train_epochs=1, test_each_epoch=False)
    ablation_config.model.llm_mode = "none"
    ablation = train_tiny_run(app_env, ablation_config)
    at = open_page(start_app(), "train")
    history = frame_with(at, "best val MSE")
    assert list(history.columns[:3]) == ["test MSE", "test MAE", "run"]
    assert history["test MSE"].notna().all()

    assert at.selectbox(key="train_overlay_setting").value.startswith("ETTh1 · features M · 32→8")
    bars = _chart(at, "Final test MSE of each run")
    shown = {x: y for trace in bars["data"] for x, y in zip(trace["x"], trace["y"])}
    assert set(shown) == {first, ablation}  # ETTm1's run is another setting
    assert shown[first] == pytest.approx(load_run(app_env / first).test_metrics["test_mse"])
    assert {trace["name"] for trace in bars["data"]} == {"llm_mode frozen", "llm_mode none"}
    at.radio(key="train_overlay_metric").set_value("test").run()
    assert "not tested every epoch" in texts(at)  # not "no values": the final test is drawn above

    at.selectbox(key="train_overlay_setting").set_value("every dataset and setting").run()
    bars = _chart(at, "Final test MSE of each run")
    assert {x for trace in bars["data"] for x in trace["x"]} == {first, ablation, other}


def test_a_finished_run_is_selected_and_the_ablation_is_one_click_away(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "train")
    small = dict(seq_len=32, pred_len=8, patch_len=8, stride=4, d_model=8, d_ff=16, n_heads=2, num_prototypes=20,
                 llm_layers=1, epochs=1, batch_size=8, max_train=32, max_eval=16)
    for name, value in small.items():
        at.number_input(key=f"train_form_{name}").set_value(value)
    at.button(key="FormSubmitter:train_form-Start training").click().run()
    job = default_registry().get(at.session_state["train_my_job"])
    assert job.wait(240) and job.status == "finished", job.error
    at.run()
    assert_clean(at)
    assert at.session_state["run_id"] == job.run_id  # selected in the sidebar without a click
    assert len(frame_with(at, "MSE (original units)")) == 4  # scored by the training process
    at.selectbox(key="run_id").set_value("(none: untrained model)").run()
    assert at.session_state["run_id"] == "(none: untrained model)"  # selected once; the person may change it

    at.button(key="train_without_llm").click().run()
    assert_clean(at)
    ablation = default_registry().get(at.session_state["train_my_job"])
    assert ablation.run_id != job.run_id and ablation.config.model.llm_mode == "none"
    same = job.config.copy()
    same.model.llm_mode = "none"
    assert ablation.config.to_dict() == same.to_dict()  # nothing else changed
