"""The comparison table of an ablation study, from its run folders (the ``ablate`` command and the Train page).

A study is the set of runs whose config.json carries the same ``study`` tag ({"id", "mode", "seed"}).
One row per llm_mode: test MSE and MAE (mean and spread over seeds), how much the shuffled-input
test grows them (%), trainable parameters, seconds per training step, peak memory (RSS) of the
training process. The spread is the sample standard deviation over seeds (None with one seed).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from safetensors import safe_open

from timellm_core.training.runs import MODEL_FILE, RunInfo

MODE_LABELS = {"frozen": "frozen LLM (the paper)", "random": "randomly initialised LLM", "none": "no LLM",
               "attention": "one attention layer", "transformer": "one transformer block"}


@dataclass
class RunMeasures:
    """What one run of a study contributes to the table."""

    run_id: str
    mode: str
    seed: int | None
    status: str
    test_mse: float | None
    test_mae: float | None
    shuffled_mse_increase_pct: float | None
    shuffled_mae_increase_pct: float | None
    trainable_parameters: int | None
    seconds_per_step: float | None  # median over the run's training steps
    peak_rss_bytes: int | None


@dataclass
class ModeRow:
    """One row of the table: a mode over its seeds."""

    mode: str
    runs: int  # runs in the study with this mode
    finished: int  # of which finished (tested): the means are over these
    test_mse_mean: float | None
    test_mse_std: float | None
    test_mae_mean: float | None
    test_mae_std: float | None
    shuffled_mse_increase_pct: float | None  # mean over seeds
    shuffled_mae_increase_pct: float | None
    trainable_parameters: int | None
    seconds_per_step: float | None  # mean over seeds of each run's median step
    peak_rss_bytes: int | None  # the largest over seeds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def study_tag(run: RunInfo) -> dict[str, Any] | None:
    """The run's ``{"id", "mode", "seed"}`` when it belongs to an ablation study, else None."""
    tag = run.study
    return tag if isinstance(tag, dict) and isinstance(tag.get("id"), str) else None


def group_studies(runs: Iterable[RunInfo]) -> dict[str, list[RunInfo]]:
    """Study id -> its runs, studies in the order their newest run comes in ``runs`` (newest first as listed)."""
    studies: dict[str, list[RunInfo]] = {}
    for run in runs:
        tag = study_tag(run)
        if tag is not None:
            studies.setdefault(tag["id"], []).append(run)
    return studies


def seconds_per_step(run: RunInfo) -> float | None:
    """Median wall time of the run's training steps (older runs: batch size / windows per second)."""
    batch = run.config.training.batch_size if run.config is not None else None
    times = []
    for event in run.step_events():
        if isinstance(event.get("seconds"), (int, float)):
            times.append(float(event["seconds"]))
        elif batch and isinstance(event.get("windows_per_s"), (int, float)) and event["windows_per_s"] > 0:
            times.append(batch / float(event["windows_per_s"]))
    return statistics.median(times) if times else None


def trainable_parameter_count(run: RunInfo) -> int | None:
    """Recorded at the start of training; else counted from the weights file's header (no tensor is read)."""
    if run.trainable_parameters is not None:
        return run.trainable_parameters
    path = run.path / MODEL_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as weights:
            return sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())
    except (OSError, ValueError, RuntimeError):
        return None


def run_measures(run: RunInfo) -> RunMeasures:
    tag = study_tag(run) or {}
    mode = tag.get("mode") or (run.config.model.llm_mode if run.config is not None else "?")
    tested = run.test_metrics or {}
    shuffled = run.shuffle_test or {}
    return RunMeasures(
        run_id=run.run_id, mode=str(mode), seed=tag.get("seed"), status=run.status,
        test_mse=_number(tested.get("test_mse")), test_mae=_number(tested.get("test_mae")),
        shuffled_mse_increase_pct=_number(shuffled.get("mse_increase_pct")),
        shuffled_mae_increase_pct=_number(shuffled.get("mae_increase_pct")),
        trainable_parameters=trainable_parameter_count(run), seconds_per_step=seconds_per_step(run),
        peak_rss_bytes=run.peak_rss_bytes)


def mode_rows(measures: list[RunMeasures], modes: Iterable[str] | None = None) -> list[ModeRow]:
    """One row per mode (in ``modes`` order, then any other mode found), over the runs that finished."""
    order = list(dict.fromkeys(list(modes or []) + [m.mode for m in measures]))
    rows = []
    for mode in order:
        of_mode = [m for m in measures if m.mode == mode]
        if not of_mode:
            continue
        done = [m for m in of_mode if m.status == "finished" and m.test_mse is not None]
        mse_mean, mse_std = _mean_std([m.test_mse for m in done])
        mae_mean, mae_std = _mean_std([m.test_mae for m in done])
        rows.append(ModeRow(
            mode=mode, runs=len(of_mode), finished=len(done), test_mse_mean=mse_mean, test_mse_std=mse_std,
            test_mae_mean=mae_mean, test_mae_std=mae_std,
            shuffled_mse_increase_pct=_mean_std([m.shuffled_mse_increase_pct for m in done])[0],
            shuffled_mae_increase_pct=_mean_std([m.shuffled_mae_increase_pct for m in done])[0],
            trainable_parameters=next((m.trainable_parameters for m in of_mode if m.trainable_parameters), None),
            seconds_per_step=_mean_std([m.seconds_per_step for m in of_mode])[0],
            peak_rss_bytes=max((m.peak_rss_bytes for m in of_mode if m.peak_rss_bytes), default=None)))
    return rows


def study_rows(runs: Iterable[RunInfo], modes: Iterable[str] | None = None) -> list[ModeRow]:
    """The table of a study's runs."""
    return mode_rows([run_measures(run) for run in runs], modes)


# -- text --------------------------------------------------------------------------------------------

COLUMNS = ("mode", "seeds", "test MSE", "test MAE", "shuffled MSE +%", "shuffled MAE +%", "trainable params",
           "s / step", "peak RSS")


def display_row(row: ModeRow) -> dict[str, str]:
    """The row as the printed and the on-screen table show it (mean ± spread, units)."""
    return {"mode": row.mode, "seeds": f"{row.finished}/{row.runs}" if row.finished != row.runs else str(row.runs),
            "test MSE": _mean_spread(row.test_mse_mean, row.test_mse_std),
            "test MAE": _mean_spread(row.test_mae_mean, row.test_mae_std),
            "shuffled MSE +%": format_percent(row.shuffled_mse_increase_pct),
            "shuffled MAE +%": format_percent(row.shuffled_mae_increase_pct),
            "trainable params": f"{row.trainable_parameters:,}" if row.trainable_parameters else "-",
            "s / step": f"{row.seconds_per_step:.3f}" if row.seconds_per_step is not None else "-",
            "peak RSS": f"{row.peak_rss_bytes / 2 ** 30:.2f} GiB" if row.peak_rss_bytes else "-"}


def text_table(rows: list[ModeRow]) -> str:
    """A fixed-width table for the terminal."""
    cells = [dict(zip(COLUMNS, COLUMNS))] + [display_row(row) for row in rows]
    widths = {column: max(len(cell[column]) for cell in cells) for column in COLUMNS}
    lines = ["  ".join(cell[c].ljust(widths[c]) if c == "mode" else cell[c].rjust(widths[c]) for c in COLUMNS)
             for cell in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def markdown_table(rows: list[ModeRow]) -> str:
    shown = [display_row(row) for row in rows]
    lines = ["| " + " | ".join(COLUMNS) + " |", "| --- |" + " ---: |" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(cell[c] for c in COLUMNS) + " |" for cell in shown]
    return "\n".join(lines)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return None, None
    return statistics.fmean(present), (statistics.stdev(present) if len(present) > 1 else None)


def _mean_spread(mean: float | None, spread: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def format_percent(value: float | None) -> str:
    return f"{value:+.1f}%" if value is not None else "-"
