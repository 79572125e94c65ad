"""Baselines: hand-computed forecasts and metrics on a tiny series, DLinear's decomposition and its learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from timellm_core.baselines import (
    DLinear, MovingAverage, baseline_forecasts, evaluate_baselines, fit_dlinear, naive_forecast,
    seasonal_naive_forecast)


class SeriesData:
    """A ForecastData-shaped object over explicit per-split series (one channel, values = scaled)."""

    def __init__(self, splits: dict[str, list[float]], seq_len: int, pred_len: int, period: int,
                 scale: float = 2.0, offset: float = 1.0):
        self.seq_len, self.pred_len, self.period = seq_len, pred_len, period
        self.target_channels = ["OT"]
        self.scale, self.offset = scale, offset
        self._windows = {}
        for split, values in splits.items():
            series = torch.tensor(values, dtype=torch.float32)[:, None]  # (L, 1)
            count = len(values) - seq_len - pred_len + 1
            self._windows[split] = [(series[i:i + seq_len], series[i + seq_len:i + seq_len + pred_len])
                                    for i in range(count)]

    def windows(self, split):
        return self._windows[split]

    def window_count(self, split):
        return len(self._windows[split])

    def inverse_transform(self, values):
        return np.asarray(values) * self.scale + self.offset


SERIES = [3, 1, 4, 1, 5, 9, 2, 6, 5]  # T=4, pred 2: four windows


def test_naive_and_seasonal_naive_forecasts_by_hand():
    x = torch.tensor([[3.0, 1.0, 4.0, 1.0, 5.0, 9.0]])[:, :, None]  # (1, 6, 1)
    assert naive_forecast(x, 3)[0, :, 0].tolist() == [9.0, 9.0, 9.0]
    # Step h repeats x[T - period + h mod period]: period 4 -> x[2], x[3], x[4], x[5], x[2].
    assert seasonal_naive_forecast(x, 5, 4)[0, :, 0].tolist() == [4.0, 1.0, 5.0, 9.0, 4.0]
    # Input shorter than a season, or no season: naive.
    assert seasonal_naive_forecast(x, 2, 24)[0, :, 0].tolist() == [9.0, 9.0]
    assert seasonal_naive_forecast(x, 2, 1)[0, :, 0].tolist() == [9.0, 9.0]


def test_metrics_of_naive_and_seasonal_naive_equal_hand_computed_values():
    data = SeriesData({"train": SERIES, "val": SERIES, "test": SERIES}, seq_len=4, pred_len=2, period=2)
    results = evaluate_baselines(data, names=("naive", "seasonal_naive"))
    # naive errors: (4, 8), (4, -3), (-7, -3), (4, 3); seasonal (period 2): (1, 8), (8, -3), (-3, -3), (-3, 3)
    assert results["naive"]["mse"] == pytest.approx(188 / 8)
    assert results["naive"]["mae"] == pytest.approx(36 / 8)
    assert results["seasonal_naive"]["mse"] == pytest.approx(174 / 8)
    assert results["seasonal_naive"]["mae"] == pytest.approx(32 / 8)
    # Original units: values * 2 + 1, so errors double.
    assert results["naive"]["mse_original"] == pytest.approx(4 * 188 / 8)
    assert results["seasonal_naive"]["mae_original"] == pytest.approx(2 * 32 / 8)
    assert results["naive"]["windows"] == 4
    # A seeded subset of the windows: the same subset every time.
    first = evaluate_baselines(data, max_eval_windows=2, seed=5, names=("naive",))
    assert first == evaluate_baselines(data, max_eval_windows=2, seed=5, names=("naive",))
    assert first["naive"]["windows"] == 2


def test_moving_average_pads_with_the_end_values():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])[None, :, None]
    trend = MovingAverage(3)(x)[0, :, 0]
    assert trend.tolist() == pytest.approx([4 / 3, 2.0, 3.0, 4.0, 14 / 3])
    assert MovingAverage(25)(torch.randn(2, 10, 3)).shape == (2, 10, 3)  # kernel longer than the input


def test_dlinear_decomposes_and_maps_each_part():
    model = DLinear(seq_len=6, pred_len=2, kernel_size=3)
    x = torch.randn(4, 6, 3)
    trend = model.decomposition(x)
    expected = (model.linear_seasonal((x - trend).transpose(1, 2))
                + model.linear_trend(trend.transpose(1, 2))).transpose(1, 2)
    assert torch.allclose(model(x), expected)
    # Channels share the maps: swapping channels swaps the outputs.
    assert torch.allclose(model(x[..., [2, 0, 1]]), model(x)[..., [2, 0, 1]], atol=1e-6)


def test_dlinear_learns_a_seasonal_series_better_than_naive():
    steps = np.arange(600)
    rng = np.random.default_rng(0)
    values = (np.sin(2 * np.pi * steps / 12) + 0.01 * steps / 12 + 0.05 * rng.standard_normal(600)).tolist()
    data = SeriesData({"train": values[:400], "val": values[380:500], "test": values[480:]},
                      seq_len=24, pred_len=6, period=12)
    fitted = fit_dlinear(data, epochs=6, batch_size=32, learning_rate=0.02, seed=1)
    assert fitted.train_losses[-1] < fitted.train_losses[0]
    results = evaluate_baselines(data, dlinear=fitted)
    assert results["dlinear"]["mse"] < 0.5 * results["naive"]["mse"]
    assert results["dlinear"]["mse"] < 0.05


def test_baseline_forecasts_for_given_windows_use_the_target_channels():
    from test_training_support import forecast_data

    data = forecast_data("MS")
    windows = data.windows("test")
    x = torch.stack([windows[i][0] for i in range(3)])  # (3, T, N_in)
    forecasts = baseline_forecasts(data, x, dlinear=None)
    assert set(forecasts) == {"naive", "seasonal_naive"}
    assert forecasts["naive"].shape == (3, data.pred_len, 1)
    assert np.allclose(forecasts["naive"][:, 0, 0], x[:, -1, -1].numpy())
