"""A finished run next to naive, seasonal naive and DLinear on the very same test windows.

Computed once per run and kept in its folder (``baselines.json``), so the pages and ``python -m
timellm_core evaluate`` read the same numbers instead of each fitting DLinear again. An app run
records them when it finishes (the training process does it after the final test); ``evaluate``
records them for any run whose comparison is missing; the pages offer a button for the rest.

Same windows means: the run's ``max_eval_windows`` and ``seed`` pick the test windows, and DLinear
is fitted on the run's ``max_train_windows`` sample, so every row of the table is scored alike.
"""

from __future__ import annotations

import os
import time
from typing import Any

from timellm_core.baselines import evaluate_baselines
from timellm_core.errors import RunError
from timellm_core.training.parts import prepare_data_for
from timellm_core.training.runs import RunFolder, load_run

LABELS = {"naive": "naive (last value)", "seasonal_naive": "seasonal naive", "dlinear": "DLinear"}


def compare_run(run_dir: str | os.PathLike[str], data: Any = None) -> dict[str, Any]:
    """Score the baselines on ``run_dir``'s test windows, write ``baselines.json``, and return its content."""
    info = load_run(run_dir)
    if info.config is None:
        raise RunError(f"The run {info.run_id} cannot be compared: {info.problem}")
    config, training = info.config, info.config.training
    if data is None:
        data = prepare_data_for(config)
    started = time.perf_counter()
    scores = evaluate_baselines(data, max_eval_windows=training.max_eval_windows, seed=int(training.seed),
                                max_train_windows=training.max_train_windows)
    record = {"created": time.time(), "seconds": round(time.perf_counter() - started, 2),
              "max_eval_windows": training.max_eval_windows, "max_train_windows": training.max_train_windows,
              "seed": int(training.seed), "period": int(getattr(data, "period", 0) or 0), "forecasters": scores}
    RunFolder.open(info.path).write_baselines(record)
    return record


def comparison_rows(test_metrics: dict[str, Any] | None, baselines: dict[str, Any] | None,
                    label: str = "Time-LLM (this run)") -> list[dict[str, Any]]:
    """One row per forecaster: name, MSE and MAE (scaled), MSE and MAE in original units; the run first."""
    rows = []
    if test_metrics:
        rows.append({"forecaster": label, "MSE": test_metrics.get("test_mse"), "MAE": test_metrics.get("test_mae"),
                     "MSE (original units)": test_metrics.get("test_mse_original"),
                     "MAE (original units)": test_metrics.get("test_mae_original")})
    period = (baselines or {}).get("period")
    for name, scores in ((baselines or {}).get("forecasters") or {}).items():
        title = LABELS.get(name, name)
        if name == "seasonal_naive" and period:
            title = f"seasonal naive (period {period})"
        rows.append({"forecaster": title, "MSE": scores.get("mse"), "MAE": scores.get("mae"),
                     "MSE (original units)": scores.get("mse_original"),
                     "MAE (original units)": scores.get("mae_original")})
    return rows


def comparison_sentence(rows: list[dict[str, Any]]) -> str:
    """"Time-LLM (this run) 0.599 beats naive 1.093 ..." in one line: the fact a class looks for first."""
    if len(rows) < 2 or rows[0].get("MSE") is None:
        return ""
    run = rows[0]
    better = [row["forecaster"] for row in rows[1:] if row.get("MSE") is not None and row["MSE"] < run["MSE"]]
    worse = [row["forecaster"] for row in rows[1:] if row.get("MSE") is not None and row["MSE"] >= run["MSE"]]
    parts = [f"Test MSE {run['MSE']:.3f}"]
    if worse:
        parts.append("lower than " + ", ".join(worse))
    if better:
        parts.append("higher than " + ", ".join(better))
    return "; ".join(parts) + "."
