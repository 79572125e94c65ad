"""Every page in AppTest: with nothing chosen it says what to do; with ETTh1, a tiny backbone and a
finished tiny run it draws its widgets and charts without an exception or an error box."""

from __future__ import annotations

import pytest

from timellm_core.config import preset

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, finished_run, frame_with, open_page, plotly_specs, start_app, texts, trace_types)

PAGES = ("home", "data", "backbone", "train", "patches", "reprogramming", "llm_attention", "forecast")
TELLS = {  # what each page asks for first when nothing is chosen
    "data": "Choose a dataset first",
    "backbone": "Choose a backbone first",
    "train": "Choose a dataset and a backbone",
    "patches": "Choose a dataset first",
    "reprogramming": "Choose a dataset first",
    "llm_attention": "Choose a dataset first",
    "forecast": "Choose a finished run first",
}


@pytest.mark.parametrize("page", PAGES)
def test_page_with_nothing_chosen_says_what_to_do(app_env, page):
    at = open_page(start_app(dataset=None, backbone=None), page)  # a new session opens on ETTh1 + SmolLM2
    assert at.selectbox(key="dataset").value is None
    assert at.selectbox(key="backbone").value is None
    if page == "home":
        assert "tl-flow" in at.get("html")[0].proto.body  # the pipeline diagram
        quick = preset("cpu-quick")
        batch, seq_len = quick.training.batch_size, quick.model.seq_len
        assert f"({batch}, {seq_len}, N)" in at.get("html")[0].proto.body  # symbolic until a dataset is chosen
    else:
        assert TELLS[page] in texts(at)
    assert not plotly_specs(at) or page == "train"


def test_a_new_session_opens_the_data_page_on_etth1(app_env):
    at = open_page(start_app(), "data")
    assert at.selectbox(key="dataset").value == "ETTh1"
    assert at.selectbox(key="backbone").value == "smollm2-135m"  # fetched by `make models`
    assert {m.label: m.value for m in at.metric}["Rows"] == "17,420"
    assert len(plotly_specs(at)) == 1


def test_home_shows_live_shapes_for_etth1_and_a_tiny_backbone(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "home")
    body = at.get("html")[0].proto.body
    # The session starts from cpu-quick; ETTh1 has N=7 channels, tiny-gpt2 a hidden size D=64.
    quick = preset("cpu-quick")
    b, m = quick.training.batch_size, quick.model
    series = b * 7
    for shape in (f"({b}, {m.seq_len}, 7)", f"({series}, {m.seq_len}, 1)",
                  f"({series}, {m.patch_count}, {m.patch_len})",
                  f"({m.num_prototypes}, 64)", f"A ({series}, {m.n_heads}, {m.patch_count}, {m.num_prototypes})",
                  f"out ({series}, {m.patch_count}, 64)", f"({b}, {m.pred_len}, 7)"):
        assert shape in body, shape
    assert at.dataframe.len == 2  # readiness: datasets and backbones


def test_data_page_draws_every_channel_with_splits_and_statistics(app_env):
    at = open_page(start_app(dataset="ETTh1"), "data")
    assert {m.label: m.value for m in at.metric}["Rows"] == "17,420"
    specs = plotly_specs(at)
    assert len(specs) == 1
    names = [t.get("name") for t in specs[0]["data"]]
    assert {"HUFL", "OT", "train", "val", "test"} <= set(names)
    assert len(specs[0]["layout"]["shapes"]) >= 3 * 7  # the split shading on every channel's panel
    assert "LTTB" in texts(at)  # 17,420 rows are downsampled for drawing, and it says so
    stats = at.dataframe[0].value
    assert list(stats.index) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert {"mean", "std", "train mean", "train std"} <= set(stats.columns)


def test_backbone_page_loads_a_tiny_backbone_and_answers_the_memory_question(app_env):
    at = open_page(start_app(backbone="tiny-llama"), "backbone")
    memory = frame_with(at, "precision")
    assert list(memory["precision"]) == ["fp32", "bf16", "4bit"]
    assert "fits 6 GB?" in memory.columns
    assert any(m.value.startswith("**Yes**") for m in at.markdown)
    at.button(key="backbone_load").click().run()
    facts = frame_with(at, "hidden size (D)").iloc[0]
    assert facts["hidden size (D)"] == 128 and facts["vocabulary (V)"] == 1024
    assert facts["layers kept"] == 2 and facts["of"] == 4  # cpu-quick keeps 2 of the 4 layers
    at.toggle(key="backbone_4bit").set_value(True).run()
    assert "4bit" in " ".join(m.value for m in at.markdown)


def test_patches_page_with_a_finished_run(app_env, finished_run, monkeypatch):
    runs_dir, run_id = finished_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    at = open_page(start_app(run_id=run_id), "patches")
    specs = plotly_specs(at)
    assert len(specs) == 4  # raw window, patches over the normalised window, one patch, embeddings
    assert trace_types(at).count("heatmap") == 1
    assert len(specs[1]["layout"]["shapes"]) >= 8  # one band per patch (P = 8)
    assert "trained weights of run" in texts(at)
    at.slider(key="patches_index").set_value(5).run()
    assert not at.exception


def test_reprogramming_page_with_a_finished_run(app_env, finished_run, monkeypatch):
    runs_dir, run_id = finished_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    at = open_page(start_app(run_id=run_id), "reprogramming")
    assert [s.value for s in at.success] == [f"Trained weights of run {run_id}."]
    prompt_html = at.get("html")[0].proto.body
    assert "&lt;|start_prompt|&gt;Dataset description:" in prompt_html and "<mark" in prompt_html
    tokens = {m.label: m.value for m in at.metric}
    assert int(tokens["Prompt tokens"]) > 50 and int(tokens["Patch positions"]) == 8
    heatmaps = [s for s in plotly_specs(at) if s["data"][0].get("type") == "heatmap"]
    assert len(heatmaps) == 2  # averaged (or one head) and all heads side by side
    assert len(heatmaps[0]["data"][0]["x"]) == 20  # top-k capped by S = 20 prototypes
    words = frame_with(at, "nearest token")
    assert len(words) == 10 and "approximation" in texts(at)
    at.segmented_control(key="prompt_head").set_value("head 1").run()
    assert not at.exception


def test_reprogramming_page_with_an_untrained_model_says_so(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-bert"), "reprogramming")
    assert "untrained" in texts(at)
    assert "heatmap" in trace_types(at)


def test_forecast_page_with_a_finished_run_and_baselines(app_env, finished_run, monkeypatch):
    runs_dir, run_id = finished_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    at = open_page(start_app(run_id=run_id), "forecast")
    labels = {m.label for m in at.metric}
    assert {"test MSE (scaled)", "test MAE (scaled)"} <= labels
    assert len(plotly_specs(at)) == 3  # errors per horizon step, one window, the future after the last row
    at.multiselect(key="forecast_baselines").set_value(["naive", "seasonal_naive", "dlinear"]).run()
    assert not at.exception and not at.error
    chart = plotly_specs(at)[1]
    assert {"input context", "ground truth", "Time-LLM forecast", "naive", "seasonal naive", "dlinear"} <= {
        t["name"] for t in chart["data"]}
    scores = frame_with(at, "forecaster")
    assert list(scores["forecaster"]) == ["Time-LLM", "naive", "seasonal naive", "dlinear"]
    assert at.get("download_button")
