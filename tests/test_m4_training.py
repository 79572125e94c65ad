"""A tiny backbone trains a few steps on M4 Hourly and the final test scores all 414 series."""

import math

import numpy as np
import pytest

from timellm_core.config import BackboneConfig, preset
from timellm_core.data import prepare_data
from timellm_core.data.m4 import find_m4_file


@pytest.fixture(scope="module")
def hourly_run():
    if find_m4_file("Hourly", "test") is None:
        pytest.fail("M4 Hourly not found: set TIMELLM_DATA to the shared datasets folder.")
    from timellm_core.backbones import load_backbone
    from timellm_core.training.trainer import Trainer

    config = preset("m4-hourly")  # the reference's M4 settings: patch_len 1, stride 1, d_model 8, d_ff 32, SMAPE
    config.backbone = BackboneConfig(name="tiny-llama", llm_layers=1)
    config.model.num_prototypes = 50  # fewer prototypes than the paper's 1000, to keep the test quick
    config.training.train_epochs = 1
    config.training.max_train_windows = 96  # 4 steps of 24 windows
    config.training.test_each_epoch = False
    config.training.device = "cpu"
    data = prepare_data(config.data, config.model.seq_len, config.model.pred_len)
    backbone = load_backbone(config.backbone, device="cpu")
    steps = []
    trainer = Trainer(config, data=data, backbone=backbone,
                      on_event=lambda event: steps.append(event) if event.get("type") == "step" else None)
    return trainer.run(), steps, data


def test_tiny_backbone_trains_and_scores_every_hourly_series(hourly_run):
    result, steps, data = hourly_run
    assert result.status == "finished"
    assert len(steps) == 4 and all(math.isfinite(event["loss"]) for event in steps)
    metrics = result.test_metrics
    assert metrics["test_windows"] == 414 and metrics["series"] == 414
    for name in ("smape", "mase", "owa"):
        assert math.isfinite(metrics[name]) and metrics[name] > 0
    # The benchmarks are reported next to the model, computed on the same series.
    assert metrics["naive2_smape"] == pytest.approx(18.383, abs=0.01)
    assert metrics["naive2_owa"] == pytest.approx(1.0)
    assert metrics["owa"] == pytest.approx(
        0.5 * (metrics["smape"] / metrics["naive2_smape"] + metrics["mase"] / metrics["naive2_mase"]))
    assert 0 <= metrics["smape"] <= 200


def test_m4_windows_feed_the_sampled_training_limit(hourly_run):
    _, _, data = hourly_run
    windows = data.windows("train")
    lengths = np.array([data.train_series(i).size - data.pred_len for i in range(len(data.series_ids))])
    for index in range(0, 414, 37):
        low, high = windows.cut_range(index)
        assert (low, high) == (lengths[index] - 480, lengths[index])
