"""The input-shuffling test (Tan et al., 2024): each test window's time steps reordered by a fixed permutation
keyed by the window's index, the same for every run; order-blind forecasts are unchanged by it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset

from test_app_support import tiny_run_config, train_tiny_run
from timellm_core.ablation.shuffle import (
    SHUFFLE_SEED, TimeShuffledWindows, run_shuffle_test, shuffle_test, window_permutation)
from timellm_core.training.runs import SHUFFLE_TEST_FILE, load_run

SEQ_LEN, PRED_LEN, CHANNELS = 24, 6, 3


class RampWindows(Dataset):
    """Window i: x[t, c] = i + t + 100 c (every value distinct, in increasing time order), y = the next steps."""

    def __init__(self, count: int = 10) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        steps = torch.arange(SEQ_LEN + PRED_LEN, dtype=torch.float32)[:, None] + i
        series = steps + 100.0 * torch.arange(CHANNELS, dtype=torch.float32)  # (T + pred_len, N)
        return series[:SEQ_LEN], series[SEQ_LEN:]


def window_mean(x: torch.Tensor) -> torch.Tensor:
    """An order-blind forecaster: every future step is the window's mean. (B, T, N) -> (B, pred_len, N)."""
    return x.mean(dim=1, keepdim=True).expand(-1, PRED_LEN, -1)


def last_value(x: torch.Tensor) -> torch.Tensor:
    """A forecaster that reads the order: the last step repeated."""
    return x[:, -1:, :].expand(-1, PRED_LEN, -1)


def test_each_window_gets_a_fixed_permutation_of_its_own():
    first = window_permutation(3, SEQ_LEN)
    assert sorted(first.tolist()) == list(range(SEQ_LEN)) and not np.array_equal(first, np.arange(SEQ_LEN))
    assert np.array_equal(first, window_permutation(3, SEQ_LEN, SHUFFLE_SEED))  # deterministic
    assert not np.array_equal(first, window_permutation(4, SEQ_LEN))  # another window, another order
    assert not np.array_equal(first, window_permutation(3, SEQ_LEN, seed=SHUFFLE_SEED + 1))


def test_the_inputs_are_reordered_in_time_the_same_way_for_every_channel_and_the_targets_are_kept():
    windows = RampWindows()
    shuffled = TimeShuffledWindows(windows, list(range(len(windows))))
    for i in (0, 7):
        x, y = windows[i]
        shuffled_x, shuffled_y = shuffled[i]
        assert torch.equal(shuffled_y, y)
        assert not torch.equal(shuffled_x, x)
        assert torch.equal(torch.sort(shuffled_x, dim=0).values, x)  # the same values, other times
        order = (shuffled_x[:, 0] - i).long()  # the ramp says which time step each row came from
        assert torch.equal(order, torch.from_numpy(window_permutation(i, SEQ_LEN)))
        for channel in range(1, CHANNELS):
            assert torch.equal((shuffled_x[:, channel] - i - 100 * channel).long(), order)
    again = TimeShuffledWindows(windows, list(range(len(windows))))
    assert all(torch.equal(again[i][0], shuffled[i][0]) for i in range(len(windows)))


def test_a_subset_is_shuffled_by_each_windows_index_in_the_split_not_its_position():
    windows = RampWindows()
    picked = [2, 5, 9]
    subset = TimeShuffledWindows(Subset(windows, picked), picked)
    whole = TimeShuffledWindows(windows, list(range(len(windows))))
    assert all(torch.equal(subset[k][0], whole[index][0]) for k, index in enumerate(picked))
    with pytest.raises(ValueError):
        TimeShuffledWindows(windows, [1, 2])


def test_an_order_blind_forecaster_scores_the_same_and_an_order_reading_one_does_not():
    windows = RampWindows()
    indices = list(range(len(windows)))
    blind = shuffle_test(window_mean, windows, indices, data=None, batch_size=4)
    assert blind.windows == len(windows)
    assert blind.shuffled_mse == pytest.approx(blind.mse, rel=1e-6)
    assert blind.shuffled_mae == pytest.approx(blind.mae, rel=1e-6)
    assert abs(blind.mse_increase_pct) < 1e-4

    reading = shuffle_test(last_value, windows, indices, data=None, batch_size=4)
    assert math.isfinite(reading.mse) and reading.mse > 0
    # On a rising ramp the last value is the best guess; shuffled, the "last value" is a random one.
    assert reading.shuffled_mse > 2 * reading.mse and reading.mse_increase_pct > 100
    values = reading.as_dict()
    assert values["mse_increase_pct"] == pytest.approx(100 * (reading.shuffled_mse / reading.mse - 1))
    assert values["shuffle_seed"] == SHUFFLE_SEED and values["test_windows"] == len(windows)


def test_a_trained_run_is_tested_on_its_own_test_windows_and_the_result_is_kept(tmp_path):
    run_id = train_tiny_run(tmp_path, tiny_run_config(train_epochs=1))
    result = run_shuffle_test(tmp_path / run_id)
    info = load_run(tmp_path / run_id)
    assert (tmp_path / run_id / SHUFFLE_TEST_FILE).is_file() and info.shuffle_test == pytest.approx(result)
    # The plain half repeats the run's final test: same windows, same weights, same numbers.
    assert result["test_mse"] == pytest.approx(info.test_metrics["test_mse"], rel=1e-5)
    assert result["test_windows"] == info.test_metrics["test_windows"]
    assert result["shuffled_test_mse"] != result["test_mse"] and result["llm_mode"] == "frozen"
    assert run_shuffle_test(tmp_path / run_id, write=False) == pytest.approx(result)  # deterministic
