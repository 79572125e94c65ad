"""The Train page's ablation-study table: the runs of a study (as `ablate` tags them) side by side, one row per
llm_mode with the mean and spread over seeds; runs outside the study stay out of it."""

from __future__ import annotations

import statistics

from test_app_support import (  # noqa: F401 (fixtures)
    app_env, frame_with, no_job_running, open_page, start_app, texts, tiny_run_config, train_tiny_run)
from timellm_core.ablation.shuffle import run_shuffle_test
from timellm_core.ablation.study import plan_study
from timellm_core.training import RunFolder, Trainer
from timellm_core.training.runs import load_run


def _train_study(runs_dir) -> tuple[str, dict[str, list[float]]]:
    """A study of frozen x 2 seeds and random x 1 seed, trained here as `ablate`'s worker would; its test MSEs."""
    plan = plan_study(tiny_run_config(), "tiny", "frozen,random", seed_count=2, runs_dir=runs_dir)
    mses: dict[str, list[float]] = {}
    for run in plan.runs()[:3]:  # frozen 3, random 3, frozen 4: the last run (random 4) has not started yet
        folder = RunFolder.create(run.config, runs_dir, run_id=run.run_id, study={"id": plan.study_id, **run.tag})
        assert Trainer(run.config, run=folder).run().status == "finished"
        run_shuffle_test(folder.path)
        mses.setdefault(run.mode, []).append(load_run(folder.path).test_metrics["test_mse"])
    return plan.study_id, mses


def test_the_train_page_compares_the_runs_of_an_ablation_study(app_env):
    outside = train_tiny_run(app_env)  # an ordinary run: listed in the history, not in the study
    study_id, mses = _train_study(app_env)
    at = open_page(start_app(dataset=None, backbone=None), "train")
    assert "Ablation studies" in [header.value for header in at.subheader]
    table = frame_with(at, "shuffled MSE +%")
    assert list(table["mode"]) == ["frozen", "random"]
    assert list(table["seeds"]) == ["2", "1"]
    frozen, random = table.iloc[0], table.iloc[1]
    mean, spread = statistics.fmean(mses["frozen"]), statistics.stdev(mses["frozen"])
    assert frozen["test MSE"] == f"{mean:.4f} ± {spread:.4f}"
    assert random["test MSE"] == f"{mses['random'][0]:.4f}"  # one seed: no spread
    for row in (frozen, random):
        assert row["shuffled MSE +%"].endswith("%") and row["trainable params"] != "-"
        assert row["s / step"] != "-"
    assert random["peak RSS"] == "-"  # trained in this test's process, not a process of its own: not measured
    assert random["what replaces the LLM"] == "randomly initialised LLM"
    assert f"`{study_id}`: 3 runs" in texts(at)
    runs = frame_with(at, "seed")
    assert outside not in set(runs["run"]) and len(runs) == 3 and set(runs["status"]) == {"finished"}
    assert outside in set(frame_with(at, "best val MSE")["run"])
