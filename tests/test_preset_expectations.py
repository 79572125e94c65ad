"""Each preset's expected time and test MSE: recorded in benchmarks/presets.json, quoted by the package,
shown next to the preset on the Train page; the recorded CPU presets beat naive and seasonal naive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_app_support import app_env, assert_clean, open_page, start_app  # noqa: F401 (fixtures)
from timellm_core.config import PRESETS
from timellm_core.preset_expectations import MEASURED, NOT_MEASURED, expectation_line, expectation_short

RECORD = Path(__file__).resolve().parents[1] / "benchmarks" / "presets.json"


def _summaries() -> dict[str, dict]:
    return {summary["preset"]: summary for summary in json.loads(RECORD.read_text())["summaries"]}


def test_every_preset_has_a_recorded_figure_or_says_why_not():
    assert set(MEASURED) | set(NOT_MEASURED) == set(PRESETS)
    assert not set(MEASURED) & set(NOT_MEASURED)


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_the_quoted_figures_are_the_recorded_ones(name):
    recorded, quoted = _summaries()[name], MEASURED[name]
    assert quoted.minutes == pytest.approx(recorded["minutes_median"], abs=0.05)
    assert quoted.test_mse == pytest.approx(recorded["test_mse_mean"], abs=5e-4)
    assert quoted.test_mse_std == pytest.approx(recorded["test_mse_std"], abs=5e-4)
    assert quoted.naive_mse == pytest.approx(recorded["naive_mse_mean"], abs=5e-4)
    assert quoted.seasonal_naive_mse == pytest.approx(recorded["seasonal_naive_mse_mean"], abs=5e-4)
    assert quoted.dlinear_mse == pytest.approx(recorded["dlinear_mse_mean"], abs=5e-4)


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_the_quoted_seed_counts_are_the_recorded_ones(name):
    runs = [run for run in json.loads(RECORD.read_text())["runs"] if run["preset"] == name]
    assert len(runs) == 3
    assert MEASURED[name].beats_naive_seeds == sum(run["test_mse"] < run["naive_mse"] for run in runs)
    assert MEASURED[name].beats_seasonal_naive_seeds == sum(run["test_mse"] < run["seasonal_naive_mse"] for run in runs)


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_every_recorded_preset_beats_both_naive_forecasts_on_every_seed(name):
    runs = [run for run in json.loads(RECORD.read_text())["runs"] if run["preset"] == name]
    assert len(runs) == 3
    for run in runs:
        assert run["test_mse"] < min(run["naive_mse"], run["seasonal_naive_mse"]), run["seed"]


def test_the_classroom_preset_comes_within_ten_percent_of_dlinear_on_every_seed_in_under_ten_minutes():
    runs = [run for run in json.loads(RECORD.read_text())["runs"] if run["preset"] == "classroom"]
    assert len(runs) == 3
    config = runs[0]["config"]
    assert (config["data"]["name"], config["backbone"]["name"]) == ("ETTh1", "smollm2-135m")
    for run in runs:
        assert run["wall_s"] <= 600, run["seed"]
        assert run["test_mse"] <= 1.10 * run["dlinear_mse"], run["seed"]  # on the same test windows


def test_the_recorded_settings_are_the_presets_settings():
    from timellm_core.config import preset

    for run in json.loads(RECORD.read_text())["runs"]:
        expected = preset(run["preset"]).to_dict()
        for part in ("data", "backbone", "model"):
            assert run["config"][part] == expected[part], (run["preset"], part)
        training = {k: v for k, v in run["config"]["training"].items() if k != "seed"}
        assert training == {k: v for k, v in expected["training"].items() if k != "seed"}, run["preset"]


def test_the_lines_read_well():
    for name in PRESETS:
        line = expectation_line(name)
        assert line and "not recorded yet" not in line
    for name in MEASURED:
        assert "over 3 seeds" in expectation_line(name) and expectation_short(name).startswith("~")


def test_the_train_page_shows_the_chosen_presets_expectation(app_env):
    at = open_page(start_app(dataset="ETTh1", backbone="tiny-gpt2"), "train")
    assert_clean(at)
    for name in ("classroom", "paper-etth1-96"):
        at.selectbox(key="train_preset").set_value(name).run()
        captions = " ".join(c.value for c in at.caption)
        assert expectation_line(name) in captions, captions
