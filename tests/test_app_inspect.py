"""timellm_core.inspection: the plain data the pages draw, checked against the model and by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from timellm_core import inspection
from timellm_core.config import BackboneConfig, DataConfig, RunConfig, TimeLLMConfig, TrainingConfig
from timellm_core.model.prompt import PromptBuilder, prompt_statistics


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.strip("()").split(", "))


def test_pipeline_shapes_are_the_shapes_of_a_real_forward():
    from timellm_core.backbones import load_backbone
    from timellm_core.model import TimeLLM

    config = RunConfig(data=DataConfig(name="Synthetic"), backbone=BackboneConfig(name="tiny-llama", llm_layers=1),
                       model=TimeLLMConfig(seq_len=40, pred_len=6, patch_len=8, stride=4, d_model=8, d_ff=16,
                                           n_heads=2, num_prototypes=12),
                       training=TrainingConfig(batch_size=3))
    backbone = load_backbone(config.backbone, device="cpu")
    stages = {s.key: s for s in inspection.pipeline_stages(config, channels=5, hidden_size=backbone.hidden_size,
                                                        vocab_size=backbone.vocab_size)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TimeLLM(config.model, backbone).eval()
        x = torch.randn(3, 40, 5)
    with torch.no_grad():
        forecast, trace = model(x, trace=True)
    assert _shape(stages["input"].shape) == tuple(x.shape)
    assert _shape(stages["normalise"].shape) == tuple(trace.normalized_input.shape)
    assert _shape(stages["patch"].shape) == tuple(trace.patches.shape)
    assert _shape(stages["embed"].shape) == tuple(trace.patch_embeddings.shape)
    assert _shape(stages["prototypes"].shape) == tuple(trace.prototypes.shape)
    attention, output = stages["reprogram"].shape.split("\n")
    assert _shape(attention.removeprefix("A ")) == tuple(trace.reprogramming_attention.shape)
    assert _shape(output.removeprefix("out "))[2] == backbone.hidden_size
    assert _shape(stages["llm"].shape.split("\n")[1].removeprefix("keep ")) == tuple(trace.llm_output.shape)
    assert _shape(stages["forecast"].shape) == tuple(forecast.shape)
    prompt = len(trace.prompt_token_ids[0])
    with_prompt = inspection.pipeline_stages(config, 5, backbone.hidden_size, backbone.vocab_size, prompt_tokens=prompt)
    llm = next(s for s in with_prompt if s.key == "llm")
    assert llm.shape.startswith(f"(15, {prompt + trace.patches.shape[1]}, {backbone.hidden_size})")


def test_pipeline_without_the_llm_has_no_prompt_and_symbols_before_choices():
    config = RunConfig(model=TimeLLMConfig(seq_len=96, pred_len=24, llm_mode="none"),
                       training=TrainingConfig(batch_size=8))
    stages = inspection.pipeline_stages(config, channels=None)
    keys = [s.key for s in stages]
    assert "prompt" not in keys and keys[-3:] == ["llm", "head", "forecast"]
    assert stages[0].shape == "(8, 96, N)" and stages[2].shape == "(8·N, 96, 1)"
    assert "No LLM" in stages[keys.index("llm")].title


def test_lttb_keeps_the_ends_and_the_spikes_a_stride_would_miss():
    y = np.zeros(10_000)
    y[3_333], y[7_001] = 50.0, -40.0  # single-sample spikes
    kept = inspection.lttb_indices(y, 200)
    assert len(kept) == 200 and kept[0] == 0 and kept[-1] == 9_999
    assert np.all(np.diff(kept) > 0)
    assert 3_333 in kept and 7_001 in kept
    assert 3_333 not in np.arange(0, 10_000, 50)  # what a plain stride of 50 would have drawn
    np.testing.assert_array_equal(inspection.lttb_indices(y[:100], 200), np.arange(100))


def test_downsample_for_plot_reports_what_it_did():
    frame = pd.DataFrame({"date": pd.date_range("2020", periods=5_000, freq="h"),
                          "a": np.sin(np.arange(5_000) / 50), "b": np.arange(5_000.0)})
    down = inspection.downsample_for_plot(frame, ["a", "b"], max_points=500)
    assert (down.original_rows, down.points, down.method) == (5_000, 500, "LTTB")
    assert down.frame["a"].notna().sum() == 500 and down.frame["b"].notna().sum() == 500
    rows = down.frame["row"].to_numpy()
    np.testing.assert_allclose(down.frame["b"].dropna().to_numpy(), rows[down.frame["b"].notna()])
    small = inspection.downsample_for_plot(frame.head(100), ["a"], max_points=500)
    assert small.method == "none" and len(small.frame) == 100


def test_channel_statistics_include_the_train_split_scaler():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 10.0], "y": [0.0, 0.0, 0.0, 4.0]})
    stats = inspection.channel_statistics(frame, ["x", "y"], train_border=(0, 3))
    assert stats.loc["x", "mean"] == pytest.approx(4.0)
    assert stats.loc["x", "train mean"] == pytest.approx(2.0)
    assert stats.loc["x", "train std"] == pytest.approx(np.std([1, 2, 3]))
    assert stats.loc["y", "train std"] == 0.0 and stats.loc["y", "max"] == 4.0


def test_patch_spans_match_the_papers_count_and_reach_into_the_padding():
    spans = inspection.patch_spans(512, 16, 8)
    assert len(spans) == 64 and spans[0] == (0, 16) and spans[-1] == (504, 520)  # 8 steps of padding
    assert inspection.patch_spans(96, 16, 8)[-1][1] == 96 + 8


def test_prompt_segments_label_the_statistics_and_join_to_the_exact_prompt():
    """The builder's labelled segments are the prompt itself, in both styles: nothing parsed back."""
    series = torch.tensor([[0.5, -1.2345678806304932, 2.0, 0.015625, 1.0, 0.25]])
    statistics = prompt_statistics(series, top_k=3)
    for style, end in (("reference", "<|<end_prompt>|>"), ("compact", "<|end_prompt|>")):
        builder = PromptBuilder("D.", seq_len=6, pred_len=2, style=style)
        segments = builder.segments(statistics, 0)
        assert "".join(s.text for s in segments) == builder.build(statistics).full_prompts()[0]
        labelled = {s.label: s.text for s in segments if s.label}
        assert set(labelled) == {"description", "pred_len", "seq_len", "min", "max", "median", "trend", "lags"}
        assert (labelled["pred_len"], labelled["seq_len"]) == ("2", "6")
        assert labelled["trend"] == "downward" and labelled["lags"] == str(statistics.lags[0].tolist())
        assert segments[-1].text == end and segments[-1].label is None
    reference = {s.label: s.text for s in PromptBuilder("D.", 6, 2).segments(statistics, 0) if s.label}
    assert reference["min"] == "-1.2345678806304932" and reference["max"] == "2.0"  # str() of the float32 value
    compact = {s.label: s.text for s in PromptBuilder("D.", 6, 2, "compact").segments(statistics, 0) if s.label}
    assert compact["min"] == "-1.235" and compact["median"] == "0.25"  # 4 significant digits; lower median


def test_attention_rankings():
    attention = np.full((2, 3, 5), 0.2)  # (H, P, S), rows sum to 1
    attention[:, :, 3] += 0.3
    attention[:, :, 0] -= 0.3
    attention[1, 2] = [0.0, 0.0, 0.9, 0.1, 0.0]
    assert list(inspection.top_prototypes(attention, 2)) == [3, 2]
    table = inspection.patch_top_prototypes(attention, patch=2, k=2, head=1)
    assert list(table["prototype"]) == [2, 3] and table["attention"].iloc[0] == pytest.approx(0.9)
    uniform = np.full((1, 4, 8), 1 / 8)
    np.testing.assert_allclose(inspection.attention_entropy(uniform), np.log(8))


def test_errors_per_step_and_the_forecast_table():
    truth = np.zeros((2, 3, 2))
    forecast = truth.copy()
    forecast[:, 2, :] = 2.0  # only the last horizon step is wrong
    steps = inspection.errors_per_step(forecast, truth)
    assert list(steps["MSE"]) == [0.0, 0.0, 4.0] and list(steps["MAE"]) == [0.0, 0.0, 2.0]
    table = inspection.forecast_table(forecast, truth, np.array([7, 9]), ["a", "OT"], forecast + 10, truth + 10)
    assert len(table) == 2 * 3 * 2 and list(table.columns[:3]) == ["test_window", "step", "channel"]
    last = table[(table.test_window == 9) & (table.step == 3) & (table.channel == "OT")].iloc[0]
    assert (last.forecast_scaled, last.truth_scaled, last.forecast, last.truth) == (2.0, 0.0, 12.0, 10.0)


def test_training_events_become_tables():
    events = [{"type": "started"}, {"type": "step", "epoch": 1, "global_step": 1, "loss": 1.0, "lr": 0.1},
              {"type": "step", "epoch": 1, "global_step": 2, "loss": 0.8, "lr": 0.1},
              {"type": "epoch", "epoch": 1, "train_loss": 0.9, "val_mse": 0.7, "val_mae": 0.6, "test_mse": None,
               "test_mae": None, "lr": 0.1},
              {"type": "step", "epoch": 2, "global_step": 3, "loss": 0.5, "lr": 0.05}]
    assert list(inspection.step_losses(events)["loss"]) == [1.0, 0.8, 0.5]
    epochs = inspection.epoch_losses(events)
    assert epochs.loc[0, "val"] == 0.7 and np.isnan(epochs.loc[0, "test"])
    assert inspection.epoch_boundaries(events) == [2]
