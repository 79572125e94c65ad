"""The ablation study's plan and its comparison table (mean and spread over seeds, shuffled growth, parameters,
seconds per step, peak memory), computed from run folders' facts."""

from __future__ import annotations

import statistics

import pytest
import torch
from safetensors.torch import save_file

from test_app_support import tiny_run_config
from timellm_core.ablation.study import DEFAULT_MODES, parse_modes, plan_study
from timellm_core.ablation.table import (
    group_studies, markdown_table, mode_rows, run_measures, seconds_per_step, study_rows, text_table,
    trainable_parameter_count)
from timellm_core.errors import ConfigError
from timellm_core.training.runs import MODEL_FILE, RunInfo


def run_info(tmp_path, run_id: str, mode: str, seed: int, mse: float | None, *, status: str = "finished",
             steps: tuple[float, ...] = (1.0, 2.0, 9.0), rss: int | None = 2 ** 30, params: int | None = 500,
             shuffled_pct: float | None = 10.0, study: str | None = "study-A") -> RunInfo:
    config = tiny_run_config(seed=seed)
    config.model.llm_mode = mode
    return RunInfo(
        run_id=run_id, path=tmp_path / run_id, status=status, created=None, updated=None, config=config,
        config_dict=config.to_dict(), backbone=None, dataset=None,
        events=[{"type": "step", "seconds": s} for s in steps],
        test_metrics={"test_mse": mse, "test_mae": mse / 2} if mse is not None else None,
        study={"id": study, "mode": mode, "seed": seed} if study else None,
        trainable_parameters=params, peak_rss_bytes=rss,
        shuffle_test={"mse_increase_pct": shuffled_pct, "mae_increase_pct": shuffled_pct / 2}
        if shuffled_pct is not None else None)


def test_rows_give_the_mean_and_spread_over_seeds_in_the_modes_order(tmp_path):
    runs = [
        run_info(tmp_path, "n1", "none", 1, 0.7, shuffled_pct=1.0, params=300),
        run_info(tmp_path, "f1", "frozen", 1, 0.4, shuffled_pct=10.0, rss=2 ** 30),
        run_info(tmp_path, "f2", "frozen", 2, 0.6, shuffled_pct=30.0, rss=3 * 2 ** 30, steps=(3.0, 4.0, 5.0)),
        run_info(tmp_path, "f3", "frozen", 3, None, status="failed", shuffled_pct=None, steps=()),
    ]
    rows = study_rows(runs, ["frozen", "random", "none"])
    assert [row.mode for row in rows] == ["frozen", "none"]  # a mode without runs has no row
    frozen, none = rows
    assert (frozen.runs, frozen.finished) == (3, 2)  # the failed run is counted, not averaged
    assert frozen.test_mse_mean == pytest.approx(0.5)
    assert frozen.test_mse_std == pytest.approx(statistics.stdev([0.4, 0.6]))
    assert frozen.test_mae_mean == pytest.approx(0.25)
    assert frozen.shuffled_mse_increase_pct == pytest.approx(20.0) and frozen.shuffled_mae_increase_pct == 10.0
    assert frozen.seconds_per_step == pytest.approx((2.0 + 4.0) / 2)  # the mean of each run's median step
    assert frozen.peak_rss_bytes == 3 * 2 ** 30 and frozen.trainable_parameters == 500
    assert none.test_mse_std is None and none.test_mse_mean == pytest.approx(0.7) and none.trainable_parameters == 300

    text, markdown = text_table(rows), markdown_table(rows)
    for table in (text, markdown):
        assert "0.5000 ± 0.1414" in table and "+20.0%" in table and "3.00 GiB" in table and "2/3" in table
        assert "0.7000" in table and "none" in table
    assert markdown.splitlines()[0].startswith("| mode | seeds | test MSE | test MAE | shuffled MSE +%")
    assert len(markdown.splitlines()) == 2 + len(rows)


def test_seconds_per_step_falls_back_to_the_batch_and_window_rate(tmp_path):
    run = run_info(tmp_path, "old", "frozen", 1, 0.5)
    run.events = [{"type": "step", "windows_per_s": 8 / 0.5}, {"type": "step", "windows_per_s": 8 / 1.5},
                  {"type": "epoch"}]  # batch_size 8: 0.5 s and 1.5 s
    assert seconds_per_step(run) == pytest.approx(1.0)
    run.events = []
    assert seconds_per_step(run) is None


def test_trainable_parameters_are_counted_from_the_weights_file_when_not_recorded(tmp_path):
    run = run_info(tmp_path, "weights", "none", 1, 0.5, params=None)
    assert trainable_parameter_count(run) is None  # no weights file either
    run.path.mkdir()
    save_file({"a.weight": torch.zeros(3, 4), "a.bias": torch.zeros(4)}, str(run.path / MODEL_FILE))
    assert trainable_parameter_count(run) == 16 and run_measures(run).trainable_parameters == 16


def test_studies_are_grouped_by_their_tag_and_untagged_runs_left_out(tmp_path):
    runs = [run_info(tmp_path, "b1", "frozen", 1, 0.5, study="study-B"),
            run_info(tmp_path, "plain", "frozen", 1, 0.5, study=None),
            run_info(tmp_path, "a1", "none", 1, 0.5), run_info(tmp_path, "b2", "none", 1, 0.5, study="study-B")]
    studies = group_studies(runs)
    assert list(studies) == ["study-B", "study-A"]  # in the order of their newest run
    assert [run.run_id for run in studies["study-B"]] == ["b1", "b2"]
    assert mode_rows([run_measures(run) for run in studies["study-A"]])[0].mode == "none"


def test_modes_are_parsed_and_checked():
    assert parse_modes(None) == DEFAULT_MODES == ("frozen", "random", "none", "attention", "transformer")
    assert parse_modes(" frozen, none,frozen ") == ("frozen", "none")
    with pytest.raises(ConfigError, match="'llama' is not one"):
        parse_modes("frozen,llama")
    with pytest.raises(ConfigError, match="empty"):
        parse_modes(" , ")


def test_the_plan_varies_only_the_mode_and_the_seed(tmp_path):
    base = tiny_run_config(seed=11)
    plan = plan_study(base, "tiny", "frozen,random,none", seed_count=2, runs_dir=tmp_path)
    runs = plan.runs()
    assert [(run.mode, run.seed) for run in runs] == [
        ("frozen", 11), ("random", 11), ("none", 11), ("frozen", 12), ("random", 12), ("none", 12)]
    assert len({run.run_id for run in runs}) == 6 and all(run.run_id.startswith(plan.study_id) for run in runs)
    assert plan.study_id.startswith("ablation_tiny_")
    for run in runs:
        expected = base.copy()
        expected.model.llm_mode, expected.training.seed = run.mode, run.seed
        assert run.config.to_dict() == expected.to_dict()
    with pytest.raises(ConfigError, match="at least 1"):
        plan_study(base, "tiny", None, seed_count=0, runs_dir=tmp_path)
