"""Forecast accuracy measures: MSE/MAE for the long-term tables, and the M4 competition's
sMAPE, MASE and OWA, with the Naive2 benchmark that OWA is relative to.

The M4 definitions follow the competition's own evaluation code (its R script
"Benchmarks and Evaluation", github.com/Mcompetitions/M4-methods) and the paper:
Makridakis, Spiliotis, Assimakopoulos, "The M4 Competition: 100,000 time series and
61 forecasting methods", International Journal of Forecasting 36(1), 2020.

Argument order is always ``(forecast, truth, ...)``. Everything is computed in float64
whatever the input dtype, because float32 sums over tens of thousands of terms drift in
the third decimal that published M4 tables report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# One-sided 90% normal quantile the M4 benchmarks use in their seasonality test.
_SEASONALITY_Z = 1.645


def _as_pair(forecast, truth, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    f = np.asarray(forecast, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    if f.shape != y.shape:
        raise ValueError(f"forecast shape {f.shape} differs from truth shape {y.shape}")
    m = None if mask is None else np.broadcast_to(np.asarray(mask, dtype=bool), f.shape)
    return f, y, m


def _mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is not None:
        values = values[mask]
    return float(values.mean()) if values.size else float("nan")


def mse(forecast, truth, mask=None) -> float:
    """Mean squared error over all elements (only where ``mask`` is true, if given)."""
    f, y, m = _as_pair(forecast, truth, mask)
    return _mean((f - y) ** 2, m)


def mae(forecast, truth, mask=None) -> float:
    """Mean absolute error over all elements (only where ``mask`` is true, if given)."""
    f, y, m = _as_pair(forecast, truth, mask)
    return _mean(np.abs(f - y), m)


def smape(forecast, truth, mask=None) -> float:
    """Symmetric MAPE in percent, the M4 way: 200 * mean(|y - f| / (|y| + |f|)).

    A point where both truth and forecast are 0 counts as a perfect 0, not as NaN.
    """
    f, y, m = _as_pair(forecast, truth, mask)
    denominator = np.abs(y) + np.abs(f)
    ratio = np.divide(np.abs(y - f), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return 200.0 * _mean(ratio, m)


def mase_scale(insample, m: int) -> float:
    """In-sample mean absolute error of the seasonal naive forecast at lag ``m``: MASE's denominator.

    NaN when the series has no more than ``m`` points (no lag-m difference exists), as in M4's code.
    """
    x = np.asarray(insample, dtype=np.float64).ravel()
    if m < 1:
        raise ValueError(f"m must be at least 1, not {m}")
    if x.size <= m:
        return float("nan")
    return float(np.mean(np.abs(x[m:] - x[:-m])))


def mase(forecast, truth, insample, m: int) -> float:
    """Mean absolute scaled error at seasonal lag ``m``.

    ``forecast`` and ``truth`` are (horizon,) for one series with ``insample`` its 1-D history,
    or (n_series, horizon[, 1]) with ``insample`` a sequence of n_series histories (lengths may
    differ). The result is the mean over every series and step, which with M4's common horizon
    equals the mean of the per-series MASE values that the competition averages.
    """
    f, y, _ = _as_pair(forecast, truth, None)
    if f.ndim <= 1:
        return float(np.mean(np.abs(y - f)) / mase_scale(insample, m))
    if len(insample) != f.shape[0]:
        raise ValueError(f"{f.shape[0]} forecasts but {len(insample)} in-sample series")
    scales = np.array([mase_scale(series, m) for series in insample])
    errors = np.abs(y - f).reshape(f.shape[0], -1)  # (n_series, horizon)
    return float(np.mean(errors / scales[:, None]))


def owa(smape_value: float, mase_value: float, naive2_smape: float, naive2_mase: float) -> float:
    """Overall weighted average: the mean of sMAPE and MASE, each relative to Naive2's."""
    return 0.5 * (smape_value / naive2_smape + mase_value / naive2_mase)


# ---------------------------------------------------------------------------------------------
# Benchmark forecasters
# ---------------------------------------------------------------------------------------------

def naive_forecast(insample, horizon: int) -> np.ndarray:
    """Naive1: the last observed value repeated ``horizon`` times."""
    x = np.asarray(insample, dtype=np.float64).ravel()
    return np.full(horizon, x[-1])


def seasonal_naive_forecast(insample, horizon: int, m: int) -> np.ndarray:
    """Each step repeats the value one season (``m`` steps) earlier; naive when m == 1.

    A series shorter than one season has no value to repeat, so it falls back to naive.
    """
    x = np.asarray(insample, dtype=np.float64).ravel()
    if m <= 1 or x.size < m:
        return naive_forecast(x, horizon)
    last_season = x[-m:]
    return np.resize(last_season, horizon)  # tiles the last season over the horizon


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation at lags 1..max_lag (R's ``acf``: demeaned, divided by the lag-0 sum)."""
    centred = np.asarray(x, dtype=np.float64) - np.mean(x)
    denominator = float(np.dot(centred, centred))
    if denominator == 0.0:
        return np.zeros(max_lag)
    return np.array([np.dot(centred[k:], centred[:-k]) / denominator for k in range(1, max_lag + 1)])


def seasonality_test(insample, m: int) -> bool:
    """M4's 90% test: is the lag-m autocorrelation significantly non-zero?

    Seasonal when |r_m| > 1.645 * sqrt((1 + 2 * sum_{k=1}^{m-1} r_k^2) / n), Bartlett's
    standard error for r_m. As in the competition's R code, a series shorter than three
    seasons is never called seasonal, and m == 1 means no seasonality to test.
    """
    x = np.asarray(insample, dtype=np.float64).ravel()
    if m <= 1 or x.size < 3 * m:
        return False
    r = autocorrelation(x, m)
    limit = _SEASONALITY_Z * np.sqrt((1.0 + 2.0 * np.sum(r[: m - 1] ** 2)) / x.size)
    return bool(abs(r[m - 1]) > limit)


def centred_moving_average(x: np.ndarray, m: int) -> np.ndarray:
    """Classical decomposition's trend: an m-point (odd m) or 2xm-point (even m) centred average.

    The ends, where the window does not fit, are NaN (R's ``filter(x, w, sides = 2)``).
    """
    x = np.asarray(x, dtype=np.float64)
    if m % 2:
        weights = np.full(m, 1.0 / m)
    else:  # even order: average two adjacent m-averages so the window is centred on a point
        weights = np.concatenate(([0.5], np.ones(m - 1), [0.5])) / m
    half = len(weights) // 2
    trend = np.full(x.size, np.nan)
    if x.size >= len(weights):
        trend[half: x.size - half] = np.convolve(x, weights, mode="valid")
    return trend


def seasonal_indices(insample, m: int) -> np.ndarray:
    """Multiplicative seasonal indices (m values averaging 1), position 0 = the series' first point.

    Classical decomposition (R's ``decompose(type = "multiplicative")``): ratio of each value to
    its centred moving average, averaged per position in the season, normalised to mean 1.
    """
    x = np.asarray(insample, dtype=np.float64).ravel()
    ratios = x / centred_moving_average(x, m)
    indices = np.array([np.nanmean(ratios[position::m]) for position in range(m)])
    return indices / indices.mean()


def naive2_forecast(insample, horizon: int, m: int) -> np.ndarray:
    """Naive2: naive on the seasonally adjusted series, reseasonalised (the M4 benchmark for OWA).

    Seasonal adjustment happens only when m > 1 and ``seasonality_test`` says the series is
    seasonal; otherwise Naive2 equals naive.
    """
    x = np.asarray(insample, dtype=np.float64).ravel()
    if not seasonality_test(x, m):
        return naive_forecast(x, horizon)
    indices = seasonal_indices(x, m)
    n = x.size
    adjusted_last = x[-1] / indices[(n - 1) % m]
    future_positions = (n + np.arange(horizon)) % m  # season position of each forecast step
    return adjusted_last * indices[future_positions]


BENCHMARKS = {
    "naive": lambda series, horizon, m: naive_forecast(series, horizon),
    "seasonal_naive": seasonal_naive_forecast,
    "naive2": naive2_forecast,
}


def benchmark_forecasts(insamples: Sequence[np.ndarray], horizon: int, m: int) -> dict[str, np.ndarray]:
    """Forecasts of every benchmark for every series: name -> (n_series, horizon)."""
    return {name: np.stack([method(series, horizon, m) for series in insamples])
            for name, method in BENCHMARKS.items()}


def score_forecasts(forecasts, truths, insamples: Sequence[np.ndarray], m: int,
                    naive2: dict[str, float] | None = None) -> dict[str, float]:
    """sMAPE and MASE of (n_series, horizon) forecasts; OWA too when Naive2's scores are given."""
    scores = {"smape": smape(forecasts, truths), "mase": mase(forecasts, truths, insamples, m)}
    if naive2 is not None:
        scores["owa"] = owa(scores["smape"], scores["mase"], naive2["smape"], naive2["mase"])
    return scores


def benchmark_table(insamples: Sequence[np.ndarray], truths, m: int) -> dict[str, dict[str, float]]:
    """sMAPE / MASE / OWA of naive, seasonal naive and Naive2 over a set of series.

    ``truths`` is (n_series, horizon); the horizon is taken from it.
    """
    truths = np.asarray(truths, dtype=np.float64).reshape(len(insamples), -1)
    forecasts = benchmark_forecasts(insamples, truths.shape[1], m)
    naive2 = score_forecasts(forecasts["naive2"], truths, insamples, m)
    return {name: score_forecasts(values, truths, insamples, m, naive2) for name, values in forecasts.items()}
