"""How far from the paper: the published ETTh1-96 figure next to a run's own, with what differs."""

from __future__ import annotations

import pytest

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, assert_clean, frame_with, open_page, start_app, texts, tiny_run_config, train_tiny_run)
from timellm_core.config import preset
from timellm_core.paper_results import PUBLISHED, compare_with_paper, published_result

TOTALS = {"train": 8161, "val": 2785, "test": 2785}  # ETTh1 windows at T=512, horizon 96


def test_the_published_etth1_96_figure_is_the_papers():
    result = PUBLISHED[("ETTh1", 96)]
    assert (result.mse, result.mae) == (0.362, 0.392)
    assert "ICLR 2024" in result.source


def test_the_paper_preset_differs_only_where_one_machine_must():
    # LLaMA-7B with the reference script's settings: the only difference left is the 8-GPU batch.
    comparison = compare_with_paper(preset("paper-etth1-96"), None, TOTALS)
    assert [row["setting"] for row in comparison.differences] == ["batch"]
    assert comparison.test_mse is None and "not tested yet" in comparison.sentence()


def test_the_smaller_backbone_preset_names_backbone_and_layers():
    comparison = compare_with_paper(preset("paper-etth1-96-smollm2"), {"test_mse": 0.41, "test_mae": 0.43}, TOTALS)
    rows = {row["setting"]: row for row in comparison.differences}
    assert set(rows) == {"backbone", "llm_layers", "batch"}
    assert (rows["backbone"]["this run"], rows["backbone"]["paper"]) == ("smollm2-135m", "LLaMA-7B")
    assert (rows["llm_layers"]["this run"], rows["llm_layers"]["paper"]) == ("30", "32")
    assert "0.362 / 0.392; this run 0.410 / 0.430" in comparison.sentence()


def test_a_small_run_lists_epochs_windows_and_lengths():
    config = preset("cpu-quick")
    config.model.pred_len = 96
    comparison = compare_with_paper(config, {"test_mse": 0.5, "test_mae": 0.5},
                                    {"train": 8545, "val": 2785, "test": 2785})
    rows = {row["setting"]: row["this run"] for row in comparison.differences}
    assert rows["epochs"] == "3" and rows["seq_len"] == "96" and rows["llm_layers"] == "2"
    assert rows["train windows"] == "480 of 8545" and rows["test windows"] == "64 of 2785"
    assert rows["prompt"] == "compact" and rows["prototypes"] == "100"


@pytest.mark.parametrize("dataset, pred_len", [("ETTh1", 24), ("ETTh2", 96), ("Weather", 96)])
def test_no_figure_is_shown_where_none_is_listed(dataset, pred_len):
    config = preset("cpu-quick")
    config.data.name, config.model.pred_len = dataset, pred_len
    assert published_result(config) is None and compare_with_paper(config, {"test_mse": 1.0}) is None


def test_a_finished_etth1_96_run_shows_the_published_figure_and_the_differences(app_env):
    config = tiny_run_config(train_epochs=1)
    config.model.seq_len, config.model.pred_len = 32, 96
    run_id = train_tiny_run(app_env, config)
    at = open_page(start_app(run_id=run_id), "forecast")
    assert_clean(at)
    assert "How far from the paper" in texts(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["published MSE"] == "0.362" and metrics["published MAE"] == "0.392"
    table = frame_with(at, "paper")
    rows = dict(zip(table["setting"], table["this run"]))
    assert rows["backbone"] == "tiny-gpt2" and rows["seq_len"] == "32" and rows["llm_layers"] == "1"
    assert rows["train windows"].startswith("32 of ")


def test_a_run_at_another_horizon_shows_no_paper_section(app_env):
    run_id = train_tiny_run(app_env, tiny_run_config(train_epochs=1))
    at = open_page(start_app(run_id=run_id), "forecast")
    assert_clean(at)
    assert "How far from the paper" not in texts(at)


def test_train_and_evaluate_print_the_published_figure_for_an_etth1_96_run(tmp_path, capsys):
    from timellm_core.cli import main

    runs = tmp_path / "runs"
    argv = ["train", "--preset", "cpu-quick", "--llm_model_path", "tiny-gpt2", "--llm_layers", "1", "--seq_len", "32",
            "--pred_len", "96", "--d_model", "8", "--d_ff", "16", "--n_heads", "2", "--num_prototypes", "16",
            "--max_train_windows", "16", "--max_eval_windows", "16", "--train_epochs", "1", "--runs_dir", str(runs),
            "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Published (ETTh1, horizon 96): MSE / MAE 0.362 / 0.392; this run " in out
    assert "Differs in: backbone, llm_layers, seq_len" in out
    (run,) = list(runs.iterdir())
    assert main(["evaluate", "--run", str(run), "--no_baselines"]) == 0
    assert "Published (ETTh1, horizon 96)" in capsys.readouterr().out
