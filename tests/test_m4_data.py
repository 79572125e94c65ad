"""M4 files, windows and splits on tiny files in the competition's own layout."""

import json

import numpy as np
import pytest
import torch

from timellm_core.config import DataConfig
from timellm_core.data.m4 import (
    M4_PATTERNS,
    describe_m4,
    load_m4,
    m4_fetch_targets,
    m4_pattern,
    read_m4_csv,
    read_m4_description,
)
from timellm_core.data.m4_windows import prepare_m4
from timellm_core.errors import ConfigError, DataError
from timellm_core.metrics import naive2_forecast

HORIZON = 48  # Hourly
SEQ_LEN = 96
LIMIT = 480  # history_size 10 x horizon


def write_m4_csv(path, ids, series):
    """Header "V1".."Vk", quoted ids and values, empty cells after each series ends (as the originals)."""
    width = 1 + max(len(values) for values in series)
    lines = [",".join(f'"V{i}"' for i in range(1, width + 1))]
    for name, values in zip(ids, series):
        cells = [f'"{name}"'] + [f'"{value:g}"' for value in values]
        lines.append(",".join(cells + [""] * (width - len(cells))))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def hourly_folder(tmp_path):
    """Three Hourly series: shorter than seq_len after hold-out, longer than the window limit, between."""
    rng = np.random.default_rng(1)
    lengths = [60, 1000, 200]
    train = [np.round(100 + 10 * rng.random(n), 1) + np.arange(n) for n in lengths]
    test = [np.round(200 + rng.random(HORIZON), 1) for _ in lengths]
    ids = ["H1", "H2", "H3"]
    write_m4_csv(tmp_path / "Hourly-train.csv", ids, train)
    write_m4_csv(tmp_path / "Hourly-test.csv", ids, test)
    return tmp_path, ids, train, test


def hourly_data(folder, **options):
    return prepare_m4(DataConfig(name="m4", seasonal_patterns="Hourly", data_path=str(folder)),
                      SEQ_LEN, HORIZON, **options)


def test_pattern_facts():
    facts = {name: (p.horizon, p.frequency, p.history_size) for name, p in M4_PATTERNS.items()}
    assert facts == {"Yearly": (6, 1, 1.5), "Quarterly": (8, 4, 1.5), "Monthly": (18, 12, 1.5),
                     "Weekly": (13, 1, 10.0), "Daily": (14, 1, 10.0), "Hourly": (48, 24, 10.0)}
    assert m4_pattern("hourly").name == "Hourly"
    with pytest.raises(ConfigError, match="Yearly, Quarterly"):
        m4_pattern("Minutely")
    with pytest.raises(ConfigError, match="seasonal_patterns"):
        m4_pattern(None)


def test_fetch_targets_name_the_canonical_files():
    (train_url, train_path, size, sha), (test_url, test_path, _, _) = m4_fetch_targets("Hourly")
    assert train_url == "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Train/Hourly-train.csv"
    assert test_url == "https://raw.githubusercontent.com/Mcompetitions/M4-methods/master/Dataset/Test/Hourly-test.csv"
    assert (train_path, test_path) == ("m4/Hourly-train.csv", "m4/Hourly-test.csv")
    assert sha == "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f" and size == 2347115
    yearly = m4_fetch_targets("Yearly")
    assert [row[1] for row in yearly] == ["m4/Yearly-train.csv", "m4/Yearly-test.csv"]
    assert all(row[2] is None and row[3] is None for row in yearly)


def test_reading_drops_the_empty_tails(hourly_folder):
    folder, ids, train, _ = hourly_folder
    read_ids, series = read_m4_csv(folder / "Hourly-train.csv")
    assert read_ids == ids
    assert [len(values) for values in series] == [60, 1000, 200]
    for got, want in zip(series, train):
        assert got.dtype == np.float64 and np.array_equal(got, want)


def test_a_gap_inside_a_series_is_refused(tmp_path):
    path = tmp_path / "Hourly-train.csv"
    path.write_text('"V1","V2","V3","V4"\n"H1","1","","3"\n')
    with pytest.raises(DataError, match="left-aligned"):
        read_m4_csv(path)


def test_non_numeric_values_and_empty_files_are_refused(tmp_path):
    path = tmp_path / "Hourly-train.csv"
    path.write_text('"V1","V2","V3"\n"H1","1","x"\n')
    with pytest.raises(DataError, match="non-numeric"):
        read_m4_csv(path)
    path.write_text("")
    with pytest.raises(DataError, match="Re-download"):
        read_m4_csv(path)


def test_missing_file_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("TIMELLM_DATA", str(tmp_path))
    with pytest.raises(DataError, match="data fetch m4 --seasonal_patterns Daily"):
        load_m4("Daily", data_path=str(tmp_path))


def test_lengths_other_than_the_protocol_are_refused(hourly_folder):
    folder = hourly_folder[0]
    config = DataConfig(name="m4", seasonal_patterns="Hourly", data_path=str(folder))
    with pytest.raises(ConfigError, match="--seq_len 96 --pred_len 48"):
        prepare_m4(config, 512, 96)
    assert prepare_m4(config, None, None).seq_len == SEQ_LEN


def test_data_object_interface(hourly_folder):
    folder, ids, train, test = hourly_folder
    data = hourly_data(folder)
    assert (data.name, data.kind, data.features, data.seq_len, data.pred_len, data.period) == \
        ("m4", "m4", "S", 96, 48, 24)
    assert data.channels == ["value"] and data.target_channels == ["value"]
    assert data.series_ids == ids and "hour" in data.description.lower()
    assert np.array_equal(data.train_series(1), train[1]) and np.array_equal(data.test_series(2), test[2])
    values = np.arange(6, dtype=np.float32).reshape(1, 6, 1)
    assert data.inverse_transform(values) is values
    assert {split: data.window_count(split) for split in ("train", "val", "test")} == \
        {"train": 3, "val": 3, "test": 3}


def test_training_windows_respect_the_history_limit_and_masks(hourly_folder):
    folder, _, train, _ = hourly_folder
    windows = hourly_data(folder).windows("train")
    for index, values in enumerate(train):
        history = values[:-HORIZON]  # the last horizon is held out for validation
        low, high = max(1, history.size - LIMIT), history.size
        assert windows.cut_range(index) == (low, high)
        cuts = []
        for draw in range(300):
            x, x_mask, y, y_mask, cut = windows.window_at(index, draw)
            cuts.append(cut)
            assert low <= cut < high
            real_in = min(SEQ_LEN, cut)
            assert x_mask.tolist() == [0.0] * (SEQ_LEN - real_in) + [1.0] * real_in
            assert np.array_equal(x[SEQ_LEN - real_in:], history[cut - real_in:cut].astype(np.float32))
            assert not x[: SEQ_LEN - real_in].any()
            real_out = min(HORIZON, history.size - cut)
            assert y_mask.tolist() == [1.0] * real_out + [0.0] * (HORIZON - real_out)
            assert np.array_equal(y[:real_out], history[cut:cut + real_out].astype(np.float32))
            assert not y[real_out:].any()
        if high - low <= 20:  # a short range is covered end to end by 300 draws
            assert set(cuts) == set(range(low, high))
        else:
            assert min(cuts) < low + (high - low) // 10 and max(cuts) > high - (high - low) // 10
    # The long series: windows end within the last 480 points, never earlier.
    assert windows.cut_range(1) == (1000 - HORIZON - LIMIT, 1000 - HORIZON)


def test_training_items_are_tensors_of_the_trainer_shapes(hourly_folder):
    windows = hourly_data(hourly_folder[0]).windows("train")
    x, y, y_mask = windows[0]
    assert x.shape == (SEQ_LEN, 1) and y.shape == (HORIZON, 1) and y_mask.shape == (HORIZON, 1)
    assert x.dtype == y.dtype == y_mask.dtype == torch.float32


def _epoch(windows, order):
    """One read of each item, in ``order``: index -> (x, y)."""
    items = {index: windows[index] for index in order}
    return {index: (x.numpy().copy(), y.numpy().copy()) for index, (x, y, _) in items.items()}


def test_training_windows_are_reproducible_per_seed_and_order(hourly_folder):
    folder = hourly_folder[0]
    first = hourly_data(folder, seed=7).windows("train")
    same = hourly_data(folder, seed=7).windows("train")
    other = hourly_data(folder, seed=8).windows("train")
    epoch_a, epoch_b = _epoch(first, [0, 1, 2]), _epoch(same, [2, 0, 1])  # any read order
    for index in range(3):
        assert np.array_equal(epoch_a[index][0], epoch_b[index][0])
    epoch_c = _epoch(other, [0, 1, 2])
    assert any(not np.array_equal(epoch_a[i][0], epoch_c[i][0]) for i in range(3))
    # The next epoch draws new cut points; set_epoch replays one.
    second = _epoch(first, [0, 1, 2])
    assert any(not np.array_equal(epoch_a[i][0], second[i][0]) for i in range(3))
    first.set_epoch(0)
    replay = _epoch(first, [0, 1, 2])
    assert all(np.array_equal(epoch_a[i][0], replay[i][0]) for i in range(3))
    # The trainer passes its run seed after the windows exist: the same object then follows it.
    reseeded = hourly_data(folder, seed=1)
    held = reseeded.windows("train")
    reseeded.set_seed(8)
    assert reseeded.windows("train") is held
    epoch_held = _epoch(held, [0, 1, 2])
    assert all(np.array_equal(epoch_held[i][0], epoch_c[i][0]) for i in range(3))
    data = hourly_data(folder, seed=7, samples_per_series=4)
    assert len(data.windows("train")) == 12


def test_validation_and_test_windows(hourly_folder):
    folder, _, train, test = hourly_folder
    data = hourly_data(folder)
    for index, values in enumerate(train):
        x, y, mask = data.windows("val")[index]
        history = values[:-HORIZON]
        real = min(SEQ_LEN, history.size)
        assert np.array_equal(x[SEQ_LEN - real:, 0].numpy(), history[-real:].astype(np.float32))
        assert not x[: SEQ_LEN - real].any()
        assert np.array_equal(y[:, 0].numpy(), values[-HORIZON:].astype(np.float32)) and bool(mask.all())
        x, y, mask = data.windows("test")[index]
        real = min(SEQ_LEN, values.size)
        assert np.array_equal(x[SEQ_LEN - real:, 0].numpy(), values[-real:].astype(np.float32))
        assert not x[: SEQ_LEN - real].any()
        assert np.array_equal(y[:, 0].numpy(), test[index].astype(np.float32)) and bool(mask.all())


def test_without_holdout_training_reaches_the_series_end(hourly_folder):
    folder, _, train, _ = hourly_folder
    windows = hourly_data(folder, holdout_validation=False).windows("train")
    assert windows.cut_range(1) == (1000 - LIMIT, 1000)


def test_extra_test_metrics(hourly_folder):
    folder, _, train, test = hourly_folder
    data = hourly_data(folder)
    truth = np.stack(test)[:, :, None].astype(np.float32)
    perfect = data.extra_test_metrics(truth.copy(), truth)
    assert perfect["smape"] == 0 and perfect["mase"] == 0 and perfect["owa"] == 0 and perfect["series"] == 3
    naive2 = np.stack([naive2_forecast(values, HORIZON, 24) for values in train])[:, :, None]
    scores = data.extra_test_metrics(naive2, truth)
    assert scores["owa"] == pytest.approx(1.0)
    assert scores["smape"] == pytest.approx(scores["naive2_smape"])
    assert {"naive_smape", "naive_mase", "naive_owa", "seasonal_naive_owa", "naive2_mase"} <= set(scores)
    # An ordered subset (max_eval_windows) is matched to its series.
    subset = data.extra_test_metrics(naive2[[0, 2]], truth[[0, 2]])
    assert subset["series"] == 2 and subset["owa"] == pytest.approx(1.0)
    with pytest.raises(DataError, match="series order"):
        data.extra_test_metrics(naive2, truth[[2, 0, 1]])


def test_describe_on_a_small_folder(hourly_folder):
    folder = hourly_folder[0]
    info = describe_m4("Hourly", 512, None, data_path=str(folder))
    assert (info["series"], info["horizon"], info["seq_len"], info["pred_len"], info["frequency"]) == \
        (3, 48, 96, 48, 24)
    assert info["available"] and info["length_min"] == 60 and info["shorter_than_seq_len"] == 1
    assert any("seq_len 512" in note for note in info["notes"])
    json.dumps(info)  # plain values only


def test_descriptions_exist_for_every_pattern():
    for name in M4_PATTERNS:
        text = read_m4_description(name)
        assert name.lower() in text.lower() and "\n" not in text and 100 < len(text) < 600


def test_real_hourly_file_facts():
    info = describe_m4("Hourly")
    if not info["available"]:
        pytest.fail("M4 Hourly not found: set TIMELLM_DATA to the shared datasets folder.")
    assert (info["series"], info["horizon"], info["seq_len"]) == (414, 48, 96)
    assert (info["length_min"], info["length_max"]) == (700, 960)
    weekly = describe_m4("Weekly")
    assert (weekly["series"], weekly["horizon"], weekly["seq_len"]) == (359, 13, 26)
    assert (weekly["length_min"], weekly["length_max"]) == (80, 2597)


def test_prepare_data_delegates_to_m4():
    from timellm_core.data import prepare_data

    data = prepare_data(DataConfig(name="m4", seasonal_patterns="Hourly"), 96, 48)
    assert data.kind == "m4" and data.spec.name == "m4"
    assert {split: data.window_count(split) for split in ("train", "val", "test")} == \
        {"train": 414, "val": 414, "test": 414}
    with pytest.raises(ConfigError, match="pred_len 48"):
        prepare_data(DataConfig(name="m4", seasonal_patterns="Hourly"), 512, 96)


def test_data_info_cli_reports_the_hourly_protocol(capsys):
    from timellm_core.cli import main

    assert main(["data", "info", "--data", "m4", "--seasonal_patterns", "Hourly", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["series"], info["horizon"], info["seq_len"], info["pred_len"], info["frequency"]) == \
        (414, 48, 96, 48, 24)
    assert main(["data", "info", "--data", "m4", "--seasonal_patterns", "Minutely"]) == 2
    assert "Minutely" in capsys.readouterr().err
