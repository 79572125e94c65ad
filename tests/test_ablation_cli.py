"""``python -m timellm_core ablate``: every mode of a preset trained in its own process, tested plainly and
shuffled, the table printed and written to a study folder, the runs tagged so the app finds them."""

from __future__ import annotations

import json

import pytest

from test_training_support import dataset_name
from timellm_core.ablation.study import STUDIES_FOLDER, STUDY_JSON, STUDY_MARKDOWN
from timellm_core.backbones.random_init import RANDOM_INIT_SEED
from timellm_core.cli import main
from timellm_core.training.runs import list_runs

# cpu-quick cut down to seconds a run: a tiny LLaMA with one layer, 16 windows, one epoch.
TINY = ["--preset", "cpu-quick", "--llm_model_path", "tiny-llama", "--llm_layers", "1", "--seq_len", "32",
        "--pred_len", "8", "--d_model", "8", "--d_ff", "16", "--n_heads", "2", "--num_prototypes", "16",
        "--max_train_windows", "16", "--max_eval_windows", "16", "--train_epochs", "1", "--batch_size", "8"]


def _ablate(tmp_path, *extra: str) -> list[str]:
    return ["ablate", *TINY, "--data", dataset_name(), "--runs_dir", str(tmp_path / "runs"), *extra]


@pytest.mark.parametrize("extra,message", [
    (["--llm_mode", "none"], "leave out --llm_mode"),
    (["--modes", "frozen,llama"], "'llama' is not one"),
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--resume", "somewhere"], "starts a new study"),
])
def test_wrong_study_settings_are_refused_before_anything_is_written(tmp_path, capsys, extra, message):
    assert main(_ablate(tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("config.json"))


def test_a_preset_is_required(tmp_path, capsys):
    assert main(["ablate", "--runs_dir", str(tmp_path)]) == 2
    assert "ablate needs --preset NAME" in capsys.readouterr().err


@pytest.mark.slow
def test_ablate_trains_each_mode_and_writes_the_study(tmp_path, capsys):
    assert main(_ablate(tmp_path, "--modes", "random,none", "--seeds", "1")) == 0
    out = capsys.readouterr().out
    table = out.split("\n")
    header = next(line for line in table if line.startswith("mode"))
    assert all(column in header for column in ("test MSE", "test MAE", "shuffled MSE +%", "trainable params",
                                               "s / step", "peak RSS"))
    rows = [line.split() for line in table if line.startswith(("random ", "none "))]
    assert [row[0] for row in rows] == ["random", "none"]

    studies = list((tmp_path / "runs" / STUDIES_FOLDER).iterdir())
    assert len(studies) == 1 and f"study: {studies[0] / STUDY_MARKDOWN}" in out
    record = json.loads((studies[0] / STUDY_JSON).read_text())
    assert record["status"] == "finished" and record["modes"] == ["random", "none"] and record["seeds"] == [2021]
    assert [row["mode"] for row in record["table"]] == ["random", "none"]
    for row in record["table"]:
        assert row["finished"] == row["runs"] == 1 and row["test_mse_mean"] > 0 and row["test_mse_std"] is None
        assert row["shuffled_mse_increase_pct"] is not None and row["seconds_per_step"] > 0
        assert row["peak_rss_bytes"] > 50 * 2 ** 20 and row["trainable_parameters"] > 0
    assert "| random | 1 |" in (studies[0] / STUDY_MARKDOWN).read_text()

    # Each run is an ordinary run folder, tagged with the study, trained in a process of its own.
    runs = {run.study["mode"]: run for run in list_runs(tmp_path / "runs")}
    assert set(runs) == {"random", "none"}
    for mode, run in runs.items():
        assert run.status == "finished" and run.study["id"] == record["study_id"] and run.study["seed"] == 2021
        assert run.config.model.llm_mode == mode and run.shuffle_test["llm_mode"] == mode
        assert run.shuffle_test["test_mse"] == pytest.approx(run.test_metrics["test_mse"], rel=1e-5)
        assert run.peak_rss_bytes is not None and run.baselines is not None
        row = next(row for row in record["table"] if row["mode"] == mode)
        assert run.trainable_parameters == row["trainable_parameters"]
    assert runs["random"].backbone["random_init_seed"] == RANDOM_INIT_SEED  # the LLM ran with random weights
    assert runs["none"].backbone["random_init_seed"] is None
    # Without an LLM nothing else changes: the same trainable layers (none adds no replacement weights).
    assert runs["random"].trainable_parameters == runs["none"].trainable_parameters
