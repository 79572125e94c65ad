"""Accuracy measures and benchmark forecasters against values worked out by hand."""

import math

import numpy as np
import pytest

from timellm_core import metrics


def test_mse_and_mae_by_hand():
    forecast = np.array([[1.0, 2.0], [3.0, 5.0]])
    truth = np.array([[1.0, 4.0], [2.0, 5.0]])
    # errors 0, -2, 1, 0
    assert metrics.mse(forecast, truth) == pytest.approx(5 / 4)
    assert metrics.mae(forecast, truth) == pytest.approx(3 / 4)
    mask = np.array([[1, 1], [0, 0]])
    assert metrics.mse(forecast, truth, mask) == pytest.approx(4 / 2)
    assert metrics.mae(forecast, truth, mask) == pytest.approx(2 / 2)


def test_smape_by_hand_with_zero_over_zero():
    forecast = np.array([1.0, 2.0, 0.0, -1.0])
    truth = np.array([2.0, 2.0, 0.0, 1.0])
    # |y-f|/(|y|+|f|): 1/3, 0, 0/0 -> 0, 2/2 = 1
    assert metrics.smape(forecast, truth) == pytest.approx(200 * (1 / 3 + 0 + 0 + 1) / 4)
    assert metrics.smape(forecast, truth, mask=[1, 1, 0, 0]) == pytest.approx(200 * (1 / 3) / 2)


def test_mase_by_hand_single_and_many_series():
    insample = np.array([1.0, 3.0, 2.0, 4.0])
    # lag-1 differences 2, 1, 2 -> scale 5/3; lag-2 differences 1, 1 -> scale 1
    assert metrics.mase_scale(insample, 1) == pytest.approx(5 / 3)
    assert metrics.mase_scale(insample, 2) == pytest.approx(1.0)
    forecast, truth = np.array([4.0, 4.0]), np.array([5.0, 3.0])  # errors 1, 1
    assert metrics.mase(forecast, truth, insample, 1) == pytest.approx(1 / (5 / 3))
    assert metrics.mase(forecast, truth, insample, 2) == pytest.approx(1.0)
    # Two series of different lengths: mean over both of |error| / own scale.
    second = np.array([10.0, 20.0, 10.0])  # lag-1 scale 10
    many = metrics.mase(np.array([[4.0, 4.0], [10.0, 10.0]]), np.array([[5.0, 3.0], [30.0, 10.0]]),
                        [insample, second], 1)
    assert many == pytest.approx((0.6 + 0.6 + 2.0 + 0.0) / 4)
    assert math.isnan(metrics.mase_scale(np.array([1.0, 2.0]), 2))


def test_owa_by_hand():
    assert metrics.owa(10.0, 1.0, 20.0, 2.0) == pytest.approx(0.5)
    assert metrics.owa(18.0, 3.0, 12.0, 2.0) == pytest.approx(1.5)


def test_naive_and_seasonal_naive():
    series = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert metrics.naive_forecast(series, 3).tolist() == [5.0, 5.0, 5.0]
    assert metrics.seasonal_naive_forecast(series, 5, 2).tolist() == [4.0, 5.0, 4.0, 5.0, 4.0]
    assert metrics.seasonal_naive_forecast(series, 2, 1).tolist() == [5.0, 5.0]
    # Shorter than one season: nothing to repeat, so it falls back to naive.
    assert metrics.seasonal_naive_forecast(series, 2, 7).tolist() == [5.0, 5.0]


def test_autocorrelation_by_hand():
    x = np.array([1.0, 3.0, 1.0, 3.0, 1.0, 3.0])  # centred: -1, 1, -1, 1, -1, 1; sum of squares 6
    assert metrics.autocorrelation(x, 2) == pytest.approx([-5 / 6, 4 / 6])


def test_seasonality_test_by_hand():
    # n = 6, m = 2: r1 = -5/6, r2 = 4/6; limit = 1.645 sqrt((1 + 2 r1^2) / 6) = 1.038 > 0.667: not seasonal.
    assert not metrics.seasonality_test(np.array([1.0, 3.0] * 3), 2)
    # n = 24: r1 = -23/24, r2 = 22/24 = 0.917; limit = 1.645 sqrt((1 + 2 (23/24)^2) / 24) = 0.566: seasonal.
    assert metrics.seasonality_test(np.array([1.0, 3.0] * 12), 2)
    assert not metrics.seasonality_test(np.array([1.0, 3.0] * 12), 1)  # m = 1: no season to test
    assert not metrics.seasonality_test(np.array([1.0, 3.0, 1.0, 3.0, 1.0]), 2)  # fewer than 3 seasons


def test_centred_moving_average_odd_and_even():
    odd = metrics.centred_moving_average(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), 3)
    assert np.isnan(odd[[0, 4]]).all() and odd[1:4] == pytest.approx([2.0, 3.0, 4.0])
    # Even order 2: weights 1/4, 1/2, 1/4 (a 2x2 average, centred on a point).
    even = metrics.centred_moving_average(np.array([2.0, 4.0, 2.0, 8.0, 2.0]), 2)
    assert np.isnan(even[[0, 4]]).all()
    assert even[1:4] == pytest.approx([3.0, 4.0, 5.0])


def test_seasonal_indices_by_hand():
    # 2x2 moving average of 2, 4, 2, 4, 2, 4 is 3 inside; ratios 2/3 and 4/3 per position.
    indices = metrics.seasonal_indices(np.array([2.0, 4.0] * 3), 2)
    assert indices == pytest.approx([2 / 3, 4 / 3])


def test_naive2_deseasonalises_a_seasonal_series():
    cycle = np.array([0.5, 1.0, 1.5, 1.0])  # mean 1: the exact multiplicative indices
    series = 100.0 * np.tile(cycle, 10)  # 40 points, last one at season position 3
    assert metrics.seasonality_test(series, 4)
    assert metrics.seasonal_indices(series, 4) == pytest.approx(cycle)
    # Deseasonalised level 100, reseasonalised from position 0 on.
    assert metrics.naive2_forecast(series, 6, 4) == pytest.approx(100.0 * np.array([0.5, 1.0, 1.5, 1.0, 0.5, 1.0]))
    # With a trend the forecast differs from seasonal naive: the last adjusted level is carried.
    trended = series * np.linspace(1.0, 2.0, series.size)
    naive2 = metrics.naive2_forecast(trended, 4, 4)
    assert not np.allclose(naive2, metrics.seasonal_naive_forecast(trended, 4, 4))
    level = trended[-1] / metrics.seasonal_indices(trended, 4)[3]
    assert naive2 == pytest.approx(level * metrics.seasonal_indices(trended, 4))


def test_naive2_is_naive_without_seasonality():
    rng = np.random.default_rng(0)
    noise = 50.0 + rng.normal(size=200)
    assert not metrics.seasonality_test(noise, 24)
    assert metrics.naive2_forecast(noise, 5, 24).tolist() == [noise[-1]] * 5
    assert metrics.naive2_forecast(noise, 5, 1).tolist() == [noise[-1]] * 5


def test_benchmark_table_by_hand():
    insamples = [np.array([1.0, 2.0, 4.0]), np.array([3.0, 3.0, 6.0])]
    truths = np.array([[4.0, 6.0], [6.0, 3.0]])
    table = metrics.benchmark_table(insamples, truths, 1)
    # naive forecasts 4, 4 and 6, 6: |e|/(|y|+|f|) = 0, 2/10, 0, 3/9
    assert table["naive"]["smape"] == pytest.approx(200 * (0.2 + 1 / 3) / 4)
    # scales (1 + 2)/2 = 1.5 and (0 + 3)/2 = 1.5; |e| = 0, 2, 0, 3
    assert table["naive"]["mase"] == pytest.approx((0 + 2 + 0 + 3) / 1.5 / 4)
    assert table["naive2"] == pytest.approx(table["naive"])  # m = 1: Naive2 is naive
    assert table["naive2"]["owa"] == pytest.approx(1.0)
