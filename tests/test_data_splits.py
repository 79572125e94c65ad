"""Splits, scaler, few-shot percent, features, windows and time features (docs/how-it-works.md §4.2)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from timellm_core.config import DataConfig
from timellm_core.data import prepare_data
from timellm_core.data.frequency import guess_freq, seasonal_period
from timellm_core.data.splits import apply_percent, split_borders, window_count
from timellm_core.data.synthetic import synthetic_frame
from timellm_core.errors import DataError


def _shared_file(relative: str) -> Path:
    path = Path(os.environ["TIMELLM_DATA"]) / relative
    if not path.is_file():
        pytest.skip(f"{relative} not available under TIMELLM_DATA")
    return path


def _data_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1  # minus the header


def test_etth1_windows_match_the_published_counts():
    data = prepare_data(DataConfig(name="ETTh1"), seq_len=512, pred_len=96)
    assert len(data.channels) == 7 and data.channels[-1] == "OT"
    assert data.borders == {"train": (0, 8640), "val": (8128, 11520), "test": (11008, 14400)}
    assert [data.window_count(split) for split in ("train", "val", "test")] == [8033, 2785, 2785]
    assert len(data.windows("test")) == 2785
    x, y = data.windows("train")[0]
    assert tuple(x.shape) == (512, 7) and tuple(y.shape) == (96, 7)


def test_ettm1_follows_the_15_minute_borders():
    rows = _data_rows(_shared_file("ETT-small/ETTm1.csv"))
    seq_len, pred_len = 336, 192
    data = prepare_data(DataConfig(name="ETTm1"), seq_len, pred_len)
    assert data.rows == rows
    expected = {"train": 34560 - seq_len - pred_len + 1,
                "val": (46080 - (34560 - seq_len)) - seq_len - pred_len + 1,
                "test": (57600 - (46080 - seq_len)) - seq_len - pred_len + 1}
    assert {split: data.window_count(split) for split in expected} == expected
    assert data.freq == "15min" and data.period == 96
    # Hand values: T=512, pred_len=96 on ETTm1.
    hand = prepare_data(DataConfig(name="ETTm1"), 512, 96)
    assert [hand.window_count(s) for s in ("train", "val", "test")] == [33953, 11425, 11425]


def test_weather_follows_the_ratio_rule():
    rows = _data_rows(_shared_file("weather/weather.csv"))
    seq_len, pred_len = 512, 96
    data = prepare_data(DataConfig(name="Weather"), seq_len, pred_len)
    assert data.rows == rows == 52696
    train_end, test_rows = int(rows * 0.7), int(rows * 0.2)
    lengths = {"train": train_end, "val": rows - test_rows - train_end + seq_len, "test": test_rows + seq_len}
    assert {s: data.window_count(s) for s in lengths} == {s: n - seq_len - pred_len + 1 for s, n in lengths.items()}
    assert [data.window_count(s) for s in ("train", "val", "test")] == [36280, 5175, 10444]
    assert len(data.channels) == 21 and data.period == 144


def test_ratio_borders_use_int_truncation():
    assert split_borders("ratio", 1001, 10) == {"train": (0, 700), "val": (690, 801), "test": (791, 1001)}
    assert window_count(5, 4, 2) == 0 and window_count(6, 4, 2) == 1


def test_scaler_is_fitted_on_the_train_split_only(tmp_path):
    original = _shared_file("ETT-small/ETTh1.csv")
    lines = original.read_text(encoding="utf-8").splitlines()
    test_row, train_row = 12000, 100  # data rows: test split is [11008, 14400), train [0, 8640)

    def with_ot(row: int, value: str) -> Path:
        edited = list(lines)
        fields = edited[row + 1].split(",")  # +1: the header
        edited[row + 1] = ",".join(fields[:-1] + [value])
        path = tmp_path / f"ETTh1_{row}.csv"
        path.write_text("\n".join(edited) + "\n", encoding="utf-8")
        return path

    reference = prepare_data(DataConfig(name="ETTh1"), 96, 24)
    changed_test = prepare_data(DataConfig(name="ETTh1", data_path=str(with_ot(test_row, "1000000.0"))), 96, 24)
    np.testing.assert_array_equal(changed_test.mean, reference.mean)
    np.testing.assert_array_equal(changed_test.std, reference.std)
    # The edit is really there: the scaled test value moved, by the train-fitted std.
    position = test_row - changed_test.borders["test"][0]
    assert changed_test.split_values("test")[position, -1] > 1000
    # A change in the train split does move the statistics (the check above can fail).
    changed_train = prepare_data(DataConfig(name="ETTh1", data_path=str(with_ot(train_row, "1000000.0"))), 96, 24)
    assert changed_train.mean[-1] != reference.mean[-1]

    train = reference.frame[reference.channels].to_numpy()[:8640]
    np.testing.assert_allclose(reference.mean, train.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(reference.std, train.std(axis=0, ddof=0), rtol=0, atol=1e-12)
    scaled_train = reference.split_values("train")
    np.testing.assert_allclose(scaled_train.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(scaled_train.std(axis=0), 1, atol=1e-4)


def test_percent_shortens_only_the_train_split_and_keeps_the_scaler():
    full = prepare_data(DataConfig(name="ETTh1"), 512, 96)
    few = prepare_data(DataConfig(name="ETTh1", percent=10), 512, 96)
    assert few.borders["train"] == (0, (8640 - 512) * 10 // 100 + 512) == (0, 1324)
    assert few.window_count("train") == 1324 - 512 - 96 + 1
    assert few.borders["val"] == full.borders["val"] and few.borders["test"] == full.borders["test"]
    np.testing.assert_array_equal(few.mean, full.mean)
    np.testing.assert_array_equal(few.std, full.std)
    assert apply_percent({"train": (0, 100), "val": (1, 2), "test": (3, 4)}, 20, 50)["train"] == (0, 60)


def test_features_s_and_ms_shapes():
    single = prepare_data(DataConfig(name="ETTh1", features="S"), 96, 24)
    assert single.channels == ["OT"] and single.target_channels == ["OT"]
    x, y = single.windows("train")[3]
    assert tuple(x.shape) == (96, 1) and tuple(y.shape) == (24, 1)

    multi_single = prepare_data(DataConfig(name="ETTh1", features="MS"), 96, 24)
    assert multi_single.channels[-1] == "OT" and multi_single.target_channels == ["OT"]
    x, y = multi_single.windows("val")[5]
    assert tuple(x.shape) == (96, 7) and tuple(y.shape) == (24, 1)
    values = multi_single.split_values("val")
    np.testing.assert_array_equal(y.numpy()[:, 0], values[5 + 96:5 + 96 + 24, -1])
    # S scales OT with the same statistics as the last channel of M.
    assert single.mean[0] == multi_single.mean[-1] and single.std[0] == multi_single.std[-1]


def test_window_i_is_rows_i_to_i_plus_t():
    data = prepare_data(DataConfig(name="Synthetic"), 48, 12)
    dataset = data.windows("val")
    values = data.split_values("val")
    for index in (0, 1, 77, len(dataset) - 1):
        x, y = dataset[index]
        np.testing.assert_array_equal(x.numpy(), values[index:index + 48])
        np.testing.assert_array_equal(y.numpy(), values[index + 48:index + 60])
    # Windows are views of one tensor: no copy per window.
    x, _ = dataset[10]
    assert x.untyped_storage().data_ptr() == dataset.values.untyped_storage().data_ptr()
    with pytest.raises(IndexError):
        dataset[len(dataset)]


def test_inverse_transform_restores_original_units():
    data = prepare_data(DataConfig(name="Synthetic"), 48, 12)
    start, end = data.borders["test"]
    restored = data.inverse_transform(data.split_values("test"))
    np.testing.assert_allclose(restored, data.frame[data.channels].to_numpy()[start:end], rtol=1e-5, atol=1e-3)
    target_only = prepare_data(DataConfig(name="Synthetic", features="MS"), 48, 12)
    _, y = target_only.windows("test")[0]
    expected = target_only.frame["OT"].to_numpy()[target_only.borders["test"][0] + 48:][:12]
    np.testing.assert_allclose(target_only.inverse_transform(y.numpy())[:, 0], expected, rtol=1e-5)


def test_time_features_are_in_range_and_match_the_calendar():
    hourly = prepare_data(DataConfig(name="ETTh1"), 96, 24)
    features = hourly.time_features("train")
    assert features.shape == (8640, 4) and features.dtype == np.float32
    assert features.min() >= -0.5 and features.max() <= 0.5
    # 2016-07-01 00:00 is a Friday, day 183 of a leap year.
    np.testing.assert_allclose(features[0], [-0.5, 4 / 6 - 0.5, -0.5, 182 / 365 - 0.5], atol=1e-6)
    np.testing.assert_allclose(features[13, 0], 13 / 23 - 0.5, atol=1e-6)
    minute = prepare_data(DataConfig(name="ETTm1"), 96, 24).time_features("test")
    assert minute.shape[1] == 5 and minute.min() >= -0.5 and minute.max() <= 0.5
    np.testing.assert_allclose(np.unique(minute[:, 0]), np.array([0, 15, 30, 45]) / 59 - 0.5, atol=1e-6)


def test_synthetic_is_deterministic_and_seasonal():
    first, second = synthetic_frame(), synthetic_frame()
    assert first.equals(second)
    first.iloc[0, 1] = -999.0  # callers get copies: the cache stays intact
    assert synthetic_frame().iloc[0, 1] != -999.0
    assert list(second.columns) == ["date", "daily", "weekly", "daily_weekly", "trend", "noisy", "OT"]
    ot = second["OT"].to_numpy()
    daily_lag = np.corrcoef(ot[24:], ot[:-24])[0, 1]
    half_day = np.corrcoef(ot[12:], ot[:-12])[0, 1]
    assert daily_lag > 0.8 and half_day < daily_lag
    a = prepare_data(DataConfig(name="Synthetic"), 96, 24)
    b = prepare_data(DataConfig(name="synthetic"), 96, 24)
    np.testing.assert_array_equal(a.split_values("train"), b.split_values("train"))
    assert a.period == 24 and a.freq == "h" and "synthetic" in a.description.lower()


def test_too_short_splits_raise_with_numbers():
    with pytest.raises(DataError) as error:
        prepare_data(DataConfig(name="Synthetic"), 96, 900)  # val keeps 876 rows + T: too few
    message = str(error.value)
    assert "needs at least 996 rows" in message and "train 6132, val 972, test 1848" in message
    assert "no window in val" in message
    with pytest.raises(DataError, match="percent 1"):
        prepare_data(DataConfig(name="Synthetic", percent=1), 512, 96)


def test_missing_target_is_an_error_for_s():
    with pytest.raises(DataError, match="Target column 'power'"):
        prepare_data(DataConfig(name="ETTh1", features="S", target="power"), 96, 24)


def test_frequency_guess_and_seasonal_period():
    ten_minutes = pd.date_range("2020-01-01", periods=200, freq="10min")
    irregular = ten_minutes.delete(50).insert(10, ten_minutes[10])  # one gap, one duplicate
    assert guess_freq(irregular) == "10min" and seasonal_period("10min") == 144
    assert guess_freq(pd.date_range("2002-01-01", periods=60, freq="7D")) == "W" and seasonal_period("W") == 52
    assert guess_freq(pd.date_range("2000-01-01", periods=30, freq="MS")) == "MS" and seasonal_period("MS") == 12
    assert guess_freq(pd.date_range("2000-01-01", periods=30, freq="D")) == "D" and seasonal_period("D") == 7
    assert seasonal_period("h") == 24 and seasonal_period("15min") == 96
