"""M4 in the app: a tiny M4 Weekly run is inspected and scored (sMAPE, MASE, OWA next to the benchmarks)."""

from __future__ import annotations

import pytest

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, assert_clean, frame_with, open_page, plotly_specs, start_app, texts, tiny_run_config, train_tiny_run)


@pytest.fixture(scope="module")
def m4_run(tmp_path_factory):
    """(runs folder, run id) of a tiny M4 Weekly run evaluated on every series (needed for the M4 scores)."""
    config = tiny_run_config("m4", max_eval_windows=None, eval_batch_size=128)
    config.data.seasonal_patterns, config.data.features = "Weekly", "S"
    model = config.model
    model.seq_len, model.pred_len, model.patch_len, model.stride = 26, 13, 4, 2  # the Weekly protocol
    runs_dir = tmp_path_factory.mktemp("m4-runs")
    return runs_dir, train_tiny_run(runs_dir, config.validate())


def test_forecast_page_scores_an_m4_run_against_the_benchmarks(app_env, m4_run, monkeypatch):
    runs_dir, run_id = m4_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    at = open_page(start_app(run_id=run_id), "forecast")
    scores = frame_with(at, "OWA")
    assert list(scores["forecaster"]) == ["Time-LLM (this run)", "naive", "seasonal naive", "naive2"]
    assert scores["OWA"].iloc[3] == pytest.approx(1.0)  # Naive2 is OWA's yardstick
    assert scores["sMAPE"].notna().all() and scores["MASE"].notna().all()
    assert "Over 359 of 359 series" in texts(at)
    assert "An M4 run cannot forecast past the end of a file" in texts(at)  # the future section declines, saying why
    chart = plotly_specs(at)[0]
    names = [trace["name"] for trace in chart["data"]]
    assert names[:3] == ["input context", "ground truth", "Time-LLM forecast"] and "naive2" in names
    assert len(chart["data"][0]["y"]) == 26 and len(chart["data"][1]["y"]) == 13  # seq_len and the horizon
    at.selectbox(key="m4_forecast_series").set_value("W100").run()
    assert_clean(at)
    assert "sMAPE" in texts(at)


@pytest.mark.parametrize("page, picker", [("patches", "patches"), ("reprogramming", "prompt"),
                                          ("llm_attention", "llm_inside")])
def test_inspection_pages_work_for_an_m4_run(app_env, m4_run, monkeypatch, page, picker):
    runs_dir, run_id = m4_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    at = open_page(start_app(run_id=run_id), page)
    assert at.selectbox(key=f"{picker}_m4").value == "W1"
    assert "heatmap" in [t.get("type") for spec in plotly_specs(at) for t in spec["data"]]


def test_train_form_fixes_the_m4_lengths(app_env):
    at = open_page(start_app(dataset="m4", m4_pattern="Weekly", backbone="tiny-gpt2"), "train")
    seq_len, pred_len = at.number_input(key="train_form_seq_len"), at.number_input(key="train_form_pred_len")
    assert (seq_len.value, pred_len.value) == (26, 13) and seq_len.disabled and pred_len.disabled
