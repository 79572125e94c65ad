"""Simple forecasters every run is compared against, on the same windows and with the same metrics.

- ``naive``: the last input value, repeated.
- ``seasonal_naive``: the value one season earlier (the dataset's period: 24 for hourly data, ...);
  naive when the input is shorter than one season.
- ``dlinear``: DLinear (Zeng et al., AAAI 2023, "Are Transformers Effective for Time Series
  Forecasting?"): a moving-average decomposition (kernel 25) into trend and remainder, one linear
  map seq_len -> pred_len for each, shared by all channels; trained with Adam on the train windows.

All work in the scaled space on the target channels (the last ``N_out`` input channels), like the
model; metrics come from ``training.evaluation`` so the numbers are directly comparable.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from timellm_core.training.evaluation import (
    check_cancel, evaluate_batches, limited_windows, mse_loss, unpack_batch)
from timellm_core.training.optimizer import make_adam
from timellm_core.training.results import extra_test_metrics

BASELINES = ("naive", "seasonal_naive", "dlinear")
DLINEAR_KERNEL = 25


def _as_tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x), dtype=torch.float32)


def naive_forecast(x: Any, pred_len: int) -> torch.Tensor:
    """(W, T, N) -> (W, pred_len, N): every step repeats the last input value."""
    x = _as_tensor(x)
    return x[:, -1:, :].expand(-1, int(pred_len), -1).clone()


def seasonal_naive_forecast(x: Any, pred_len: int, period: int) -> torch.Tensor:
    """(W, T, N) -> (W, pred_len, N): step h repeats x[T - period + (h mod period)]."""
    x = _as_tensor(x)
    period = int(period or 0)
    seq_len = x.shape[1]
    if period <= 1 or seq_len < period:
        return naive_forecast(x, pred_len)
    positions = seq_len - period + (torch.arange(int(pred_len)) % period)
    return x[:, positions, :].clone()


class MovingAverage(nn.Module):
    """Trend by a centred moving average; the ends are padded with copies of the first/last value."""

    def __init__(self, kernel_size: int):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.pool = nn.AvgPool1d(kernel_size=self.kernel_size, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        front = (self.kernel_size - 1) // 2
        back = self.kernel_size - 1 - front
        padded = torch.cat([x[:, :1, :].expand(-1, front, -1), x, x[:, -1:, :].expand(-1, back, -1)], dim=1)
        return self.pool(padded.transpose(1, 2)).transpose(1, 2)


class DLinear(nn.Module):
    """Trend + remainder, each through its own Linear(seq_len -> pred_len), shared over channels."""

    def __init__(self, seq_len: int, pred_len: int, kernel_size: int = DLINEAR_KERNEL):
        super().__init__()
        self.decomposition = MovingAverage(kernel_size)
        self.linear_seasonal = nn.Linear(seq_len, pred_len)
        self.linear_trend = nn.Linear(seq_len, pred_len)
        # Start from "average of the input" as DLinear does: a sensible forecast before any training.
        with torch.no_grad():
            self.linear_seasonal.weight.fill_(1.0 / seq_len)
            self.linear_trend.weight.fill_(1.0 / seq_len)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, pred_len, C)
        trend = self.decomposition(x)
        seasonal = x - trend
        out = self.linear_seasonal(seasonal.transpose(1, 2)) + self.linear_trend(trend.transpose(1, 2))
        return out.transpose(1, 2)


@dataclass
class DLinearForecaster:
    """A fitted DLinear and how many target channels it forecasts (the last ``n_out`` inputs)."""

    model: DLinear
    n_out: int
    train_losses: list[float]
    val_mse: float | None

    def predict(self, x: Any) -> torch.Tensor:
        """(W, T, N_in) -> (W, pred_len, N_out)."""
        self.model.eval()
        with torch.no_grad():
            return self.model(_as_tensor(x)[..., -self.n_out:].float())


def fit_dlinear(data: Any, *, epochs: int = 5, batch_size: int = 32, learning_rate: float = 0.005,
                max_train_windows: int | None = None, max_eval_windows: int | None = None, seed: int = 2021,
                cancel: threading.Event | None = None) -> DLinearForecaster:
    """Train DLinear on ``data``'s train windows (MSE, Adam); keep the epoch with the lowest validation MSE."""
    generator = torch.Generator().manual_seed(int(seed))
    train_set, _ = limited_windows(data, "train", max_train_windows, seed)
    first_x, first_y, _ = unpack_batch(train_set[0])
    n_out = int(first_y.shape[-1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = DLinear(int(first_x.shape[0]), int(first_y.shape[0]))
    optimizer = make_adam(model.parameters(), lr=learning_rate)
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator)
    val_set = None
    if getattr(data, "window_count", lambda split: 1)("val") > 0:
        val_set, _ = limited_windows(data, "val", max_eval_windows, seed)
    best_state, best_val, losses = None, None, []
    for _ in range(int(epochs)):
        model.train()
        epoch_losses = []
        for batch in loader:
            check_cancel(cancel)
            x, y, mask = unpack_batch(batch)
            optimizer.zero_grad(set_to_none=True)
            loss = mse_loss(model(x[..., -n_out:].float()), y.float(), mask)
            loss.backward()
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        losses.append(float(np.mean(epoch_losses)))
        if val_set is not None:
            fitted = DLinearForecaster(model, n_out, losses, None)
            score = evaluate_batches(fitted.predict, DataLoader(val_set, batch_size=256), data, cancel=cancel).mse
            if best_val is None or score < best_val:
                best_val, best_state = score, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return DLinearForecaster(model, n_out, losses, best_val)


def baseline_forecasts(data: Any, x: Any, dlinear: DLinearForecaster | None = None,
                       names: tuple[str, ...] = BASELINES) -> dict[str, np.ndarray]:
    """Forecasts of each baseline for input windows ``x`` (W, T, N_in) -> name: (W, pred_len, N_out), scaled.

    ``dlinear`` is a fitted forecaster (``fit_dlinear``); without one, DLinear is skipped.
    """
    x = _as_tensor(x).float()
    n_out = len(getattr(data, "target_channels", []) or []) or x.shape[-1]
    pred_len = int(data.pred_len)
    targets = x[..., -n_out:]
    forecasts: dict[str, np.ndarray] = {}
    if "naive" in names:
        forecasts["naive"] = naive_forecast(targets, pred_len).numpy()
    if "seasonal_naive" in names:
        forecasts["seasonal_naive"] = seasonal_naive_forecast(targets, pred_len, data.period).numpy()
    if "dlinear" in names and dlinear is not None:
        forecasts["dlinear"] = dlinear.predict(x).numpy()
    return forecasts


def evaluate_baselines(data: Any, max_eval_windows: int | None = None, seed: int = 2021, *,
                       names: tuple[str, ...] = BASELINES, dlinear: DLinearForecaster | None = None,
                       dlinear_epochs: int = 5, max_train_windows: int | None = None, batch_size: int = 256,
                       cancel: threading.Event | None = None) -> dict[str, dict[str, float]]:
    """name -> {mse, mae, mse_original, mae_original, windows} on the test windows a run with the same
    ``max_eval_windows`` and ``seed`` is tested on."""
    test_set, indices = limited_windows(data, "test", max_eval_windows, seed)
    loader = DataLoader(test_set, batch_size=batch_size, shuffle=False)
    n_out = len(getattr(data, "target_channels", []) or []) or None
    pred_len, period = int(data.pred_len), int(getattr(data, "period", 0) or 0)
    if "dlinear" in names and dlinear is None:
        dlinear = fit_dlinear(data, epochs=dlinear_epochs, max_train_windows=max_train_windows,
                              max_eval_windows=max_eval_windows, seed=seed, cancel=cancel)
    predictors = {
        "naive": lambda x: naive_forecast(x[..., -(n_out or x.shape[-1]):], pred_len),
        "seasonal_naive": lambda x: seasonal_naive_forecast(x[..., -(n_out or x.shape[-1]):], pred_len, period),
        "dlinear": lambda x: dlinear.predict(x),
    }
    # Data with its own test metrics (M4: sMAPE, MASE, OWA) scores the baselines with them too.
    collect = callable(getattr(data, "extra_test_metrics", None))
    results: dict[str, dict[str, float]] = {}
    for name in names:
        result = evaluate_batches(predictors[name], loader, data, cancel=cancel, collect=collect)
        results[name] = {"mse": result.mse, "mae": result.mae, "mse_original": result.mse_original,
                         "mae_original": result.mae_original, "windows": result.windows}
        if collect:  # only the forecaster's own scores (the data also reports its benchmarks' under prefixes)
            extra = extra_test_metrics(data, result, indices)
            results[name].update({key: extra[key] for key in ("smape", "mase", "owa") if key in extra})
    return results
