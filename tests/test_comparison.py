"""A run next to the baselines on its own test windows: computed once, kept in the run folder, read by
``evaluate`` and the pages."""

from __future__ import annotations

import json

import pytest

from test_app_support import tiny_run_config, train_tiny_run
from timellm_core.baselines import evaluate_baselines
from timellm_core.cli import main
from timellm_core.comparison import compare_run, comparison_rows, comparison_sentence
from timellm_core.training.parts import prepare_data_for
from timellm_core.training.runs import BASELINES_FILE, load_run


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs = tmp_path_factory.mktemp("comparison-runs")
    return runs, train_tiny_run(runs, tiny_run_config(train_epochs=1))


def test_compare_run_scores_the_baselines_on_the_runs_own_windows_and_keeps_them(finished):
    runs, run_id = finished
    record = compare_run(runs / run_id)
    info = load_run(runs / run_id)
    assert info.baselines == json.loads((runs / run_id / BASELINES_FILE).read_text())
    assert set(record["forecasters"]) == {"naive", "seasonal_naive", "dlinear"}
    config = info.config
    direct = evaluate_baselines(prepare_data_for(config), max_eval_windows=config.training.max_eval_windows,
                                seed=int(config.training.seed), max_train_windows=config.training.max_train_windows)
    for name, scores in direct.items():
        assert info.baselines["forecasters"][name]["mse"] == pytest.approx(scores["mse"], rel=1e-6)
        assert scores["windows"] == info.test_metrics["test_windows"]  # the very same test windows


def test_evaluate_reads_the_kept_comparison(finished, capsys):
    runs, run_id = finished
    path = runs / run_id / BASELINES_FILE
    record = json.loads(path.read_text())
    record["forecasters"]["naive"]["mse"] = 123.0  # only a reader of the file can print this
    path.write_text(json.dumps(record))
    assert main(["evaluate", "--run", run_id, "--runs_dir", str(runs), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["baselines"]["naive"]["mse"] == 123.0
    path.unlink()
    assert main(["evaluate", "--run", run_id, "--runs_dir", str(runs), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["baselines"]
    assert path.is_file() and printed["naive"]["mse"] == json.loads(path.read_text())["forecasters"]["naive"]["mse"]


def test_rows_put_the_run_first_and_the_sentence_states_the_comparison():
    metrics = {"test_mse": 0.599, "test_mae": 0.5, "test_mse_original": 9.0, "test_mae_original": 2.0}
    baselines = {"period": 24, "forecasters": {
        "naive": {"mse": 1.093, "mae": 0.8, "mse_original": 15.0, "mae_original": 3.0},
        "seasonal_naive": {"mse": 0.492, "mae": 0.45, "mse_original": 7.0, "mae_original": 1.9},
        "dlinear": {"mse": 0.380, "mae": 0.41, "mse_original": 6.0, "mae_original": 1.7}}}
    rows = comparison_rows(metrics, baselines)
    assert [row["forecaster"] for row in rows] == ["Time-LLM (this run)", "naive (last value)",
                                                   "seasonal naive (period 24)", "DLinear"]
    assert [row["MSE"] for row in rows] == [0.599, 1.093, 0.492, 0.380]
    assert comparison_sentence(rows) == ("Test MSE 0.599; lower than naive (last value); higher than seasonal "
                                         "naive (period 24), DLinear.")
    assert comparison_sentence(comparison_rows(metrics, None)) == ""
