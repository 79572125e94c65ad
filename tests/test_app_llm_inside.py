"""The "Inside the LLM" page in AppTest: a finished run against its untrained twin, the layer and head
pickers, the per-part view, the session cache, a bidirectional backbone and a model without the LLM."""

from __future__ import annotations

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, finished_run, open_page, plotly_specs, start_app, texts)

from timellm_core.config import preset

PAGE = "llm_attention"


def _titles(at) -> list[str]:
    return [spec["layout"].get("title", {}).get("text", "") for spec in plotly_specs(at)]


def _metrics(at) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_a_finished_run_side_by_side_with_the_untrained_model(app_env, finished_run, monkeypatch):
    runs_dir, run_id = finished_run
    monkeypatch.setenv("TIMELLM_RUNS", str(runs_dir))
    at = open_page(start_app(run_id=run_id), PAGE)
    assert [s.value for s in at.success] == [f"Trained weights of run {run_id}, compared below with the same "
                                             "model untrained."]
    metrics = _metrics(at)
    prompt_tokens, patches = int(metrics["Prompt tokens"]), int(metrics["Patch positions"])
    assert prompt_tokens > 50 and patches == 8 and metrics["Layers x heads"] == "1 x 4"  # tiny-gpt2, 1 layer
    assert metrics["Computed in"].endswith(" s")
    specs = plotly_specs(at)
    heatmap = specs[0]["data"][0]
    assert heatmap["type"] == "heatmap" and len(heatmap["x"]) == prompt_tokens + patches and len(heatmap["y"]) == 8
    assert heatmap["x"][-1] == "patch 7" and heatmap["x"][0].startswith("0 ")
    bands = {shape["fillcolor"] for shape in specs[0]["layout"]["shapes"]}
    assert len(bands) >= 8  # description, task, min, max, median, trend, lags, end marker, patches
    shares = next(spec for spec in specs if "read the prompt" in spec["layout"]["title"]["text"])
    assert [trace["name"] for trace in shares["data"]] == ["trained run", "untrained model"]
    assert "the trained run's patch positions give" in texts(at) and "untrained:" in texts(at)
    table = at.dataframe[0].value
    assert list(table["layer"]) == [0] and {"prompt share", "first token", "min", "lags", "patches"} <= set(table)

    at.selectbox(key="llm_inside_head").set_value("head 2").run()
    assert not at.exception and not at.error
    assert "layer 0, head 2" in _titles(at)[0]
    assert _metrics(at)["Computed in"] == "cached"  # the session keeps both models' maps for this window


def test_the_untrained_model_with_another_layer_head_and_the_per_part_view(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-llama"), PAGE)
    assert "untrained" in texts(at) and "choose a trained run" in texts(at)
    layers = preset("cpu-quick").backbone.llm_layers
    assert _metrics(at)["Layers x heads"] == f"{layers} x 4"
    assert f"layer {layers - 1}, average of heads" in _titles(at)[0]  # the last layer by default
    shares = next(spec for spec in plotly_specs(at) if "read the prompt" in spec["layout"]["title"]["text"])
    assert [trace["name"] for trace in shares["data"]] == ["untrained model"]
    assert len(shares["data"][0]["x"]) == layers
    assert "is causal" in texts(at)

    at.selectbox(key="llm_inside_layer").set_value(0).run()
    at.selectbox(key="llm_inside_head").set_value("head 3").run()
    assert not at.exception and not at.error
    assert "layer 0, head 3" in _titles(at)[0]
    at.radio(key="llm_inside_keys").set_value("summed per prompt part").run()
    assert not at.exception and not at.error
    grouped = plotly_specs(at)[0]["data"][0]
    assert grouped["x"][:3] == ["description", "task", "min"] and grouped["x"][-1] == "patches"
    assert "per prompt part (layer 0, head 3)" in _titles(at)[0]


def test_a_bidirectional_backbone_says_so(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-bert"), PAGE)
    assert "bidirectional" in texts(at)
    assert plotly_specs(at)[0]["data"][0]["x"][0] == "0 [CLS]"


def test_a_model_without_the_llm_has_nothing_to_look_inside(app_env):
    config = preset("cpu-quick")
    config.model.llm_mode = "none"
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2", working_config=config), PAGE)
    assert "no LLM to look inside" in texts(at)
    assert not plotly_specs(at)
