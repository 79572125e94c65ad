"""An ablation study (Tan et al., NeurIPS 2024): one setting trained once per llm_mode and seed.

Each run is an ordinary run folder, trained by the app's training process (``ProcessTrainingJob``:
``python -m timellm_core.cli.train_worker RUN --shuffle_test``), one after the other, so each run
has the machine's memory to itself and its peak RSS is its own. The child also tests the finished
run on its test windows shuffled in time (``shuffle.py``) and scores the baselines on them. Runs
are tagged ``{"study": {"id", "mode", "seed"}}`` in their config.json, which is how the Train page
finds them; the table also goes to ``RUNS/studies/<study id>/study.json`` and ``study.md``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from timellm_core.ablation.table import (
    MODE_LABELS, RunMeasures, format_percent, markdown_table, mode_rows, run_measures)
from timellm_core.config import LLM_MODES, RunConfig
from timellm_core.errors import ConfigError, RunError
from timellm_core.machine import cpu_model_name
from timellm_core.training.events import json_safe
from timellm_core.training.process_job import ProcessTrainingJob
from timellm_core.training.progress import ProgressView
from timellm_core.training.run_files import _write_json_atomic, _write_text_atomic
from timellm_core.training.runs import load_run, make_run_id, resolve_runs_dir

DEFAULT_MODES = ("frozen", "random", "none", "attention", "transformer")
STUDIES_FOLDER = "studies"  # under the runs folder: RUNS/studies/<study id>/
STUDY_JSON, STUDY_MARKDOWN = "study.json", "study.md"
SHARED_MACHINE_NOTE = ("Timings (seconds per step) and memory were measured on whatever machine ran the study; on a "
                       "shared machine other work changes the seconds, so compare them within one study only.")


def parse_modes(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"frozen,none"`` -> ("frozen", "none"); every llm_mode by default; a ConfigError names a wrong one."""
    if text is None:
        return DEFAULT_MODES
    parts = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)]
    modes = tuple(dict.fromkeys(p for p in parts if p))
    unknown = [mode for mode in modes if mode not in LLM_MODES]
    if unknown or not modes:
        raise ConfigError(f"--modes takes a comma-separated list of {', '.join(DEFAULT_MODES)}"
                          + (f"; {', '.join(map(repr, unknown))} is not one." if unknown else "; it was empty."))
    return modes


@dataclass(frozen=True)
class StudyRun:
    """One run of the plan: the base setting with this mode and seed."""

    mode: str
    seed: int
    run_id: str
    config: RunConfig

    @property
    def tag(self) -> dict[str, Any]:
        return {"mode": self.mode, "seed": self.seed}


@dataclass(frozen=True)
class StudyPlan:
    """Which runs a study trains: every mode for every seed (seed-major, so partial studies cover every mode)."""

    study_id: str
    name: str  # the preset's name (or what the setting is called)
    base: RunConfig
    modes: tuple[str, ...]
    seeds: tuple[int, ...]

    def runs(self) -> list[StudyRun]:
        runs = []
        for seed in self.seeds:
            for mode in self.modes:
                config = self.base.copy()
                config.model.llm_mode, config.training.seed = mode, int(seed)
                runs.append(StudyRun(mode, int(seed), f"{self.study_id}_{mode}_seed{seed}", config.validate()))
        return runs


def plan_study(base: RunConfig, name: str, modes: Sequence[str] | str | None = None, seed_count: int = 1,
               runs_dir: str | os.PathLike[str] | None = None) -> StudyPlan:
    """A plan for ``seed_count`` seeds (the base seed, +1, ...) of each mode, with a fresh study id."""
    if int(seed_count) < 1:
        raise ConfigError(f"--seeds must be at least 1, not {seed_count}.")
    base = base.copy().validate()
    study_id = make_run_id(base, name=f"ablation_{name}")
    folder = resolve_runs_dir(runs_dir) / STUDIES_FOLDER
    suffix = 1
    while (folder / study_id).exists():  # two studies started in the same second
        suffix += 1
        study_id = f"{make_run_id(base, name=f'ablation_{name}')}-{suffix}"
    seeds = tuple(int(base.training.seed) + i for i in range(int(seed_count)))
    return StudyPlan(study_id, str(name), base, parse_modes(modes), seeds)


ProgressCallback = Callable[[StudyRun, int, int, ProgressView], None]  # (run, its number, runs in all, progress)


def run_study(plan: StudyPlan, runs_dir: str | os.PathLike[str] | None = None,
              on_progress: ProgressCallback | None = None, on_done: Callable[[StudyRun, RunMeasures], None] | None = None,
              poll_s: float = 1.0) -> dict[str, Any]:
    """Train and test every run of the plan, one after the other; returns the study record (as study.json).

    Ctrl-C stops the run in progress (it is recorded as cancelled), writes the study so far, and re-raises.
    """
    folder = resolve_runs_dir(runs_dir) / STUDIES_FOLDER / plan.study_id
    try:
        folder.mkdir(parents=True)
    except OSError as error:
        raise RunError(f"Could not create the study folder {folder}: {error}.") from error
    started, load_before = time.time(), _load_average()
    done: list[str] = []
    runs = plan.runs()
    write_study(folder, plan, done, "running", started, load_before)
    for number, run in enumerate(runs, start=1):
        job = ProcessTrainingJob(run.config, runs_dir=runs_dir, run_id=run.run_id, worker_args=["--shuffle_test"],
                                 record={"study": {"id": plan.study_id, **run.tag}})
        done.append(job.run_dir)
        job.start()
        try:
            while not job.wait(poll_s):
                if on_progress is not None:
                    on_progress(run, number, len(runs), job.view)
        except KeyboardInterrupt:
            job.cancel()
            job.wait(120)
            write_study(folder, plan, done, "cancelled", started, load_before)
            raise
        if on_done is not None:
            on_done(run, run_measures(load_run(job.run_dir)))
    return write_study(folder, plan, done, "finished", started, load_before)


def write_study(folder: Path, plan: StudyPlan, run_dirs: list[str], status: str, started: float,
                load_before: list[float] | None) -> dict[str, Any]:
    """study.json (everything) and study.md (the table and each run) for the runs so far."""
    infos = [load_run(path) for path in run_dirs]
    measures = [run_measures(info) for info in infos]
    rows = mode_rows(measures, plan.modes)
    record = {
        "study_id": plan.study_id, "name": plan.name, "status": status, "started": started, "updated": time.time(),
        "modes": list(plan.modes), "seeds": list(plan.seeds), "config": plan.base.to_dict(),
        "table": [row.as_dict() for row in rows], "runs": [dataclasses.asdict(m) for m in measures],
        "shuffle_tests": {info.run_id: info.shuffle_test for info in infos if info.shuffle_test},
        "baselines": _baselines(infos),
        "machine": {"cpu": cpu_model_name(), "cpu_count": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": _load_average()},
        "note": SHARED_MACHINE_NOTE,
    }
    _write_json_atomic(folder / STUDY_JSON, json_safe(record))
    _write_text_atomic(folder / STUDY_MARKDOWN, study_markdown(record, rows, measures))
    return record


def study_markdown(record: dict[str, Any], rows: list, measures: list[RunMeasures]) -> str:
    config = RunConfig.from_dict(record["config"])
    machine = record["machine"]
    lines = [
        f"# Ablation study `{record['study_id']}` ({record['status']})", "",
        f"Setting `{record['name']}`: {config.data.name} (features {config.data.features}), "
        f"{config.model.seq_len} -> {config.model.pred_len} steps, backbone {config.backbone.name} at "
        f"{_count(config.backbone.llm_layers, 'layer')}, {_count(config.training.train_epochs, 'epoch')}, "
        f"{config.training.max_train_windows or 'all'} training and {config.training.max_eval_windows or 'all'} "
        f"test windows; seeds {', '.join(map(str, record['seeds']))}. Only llm_mode differs between rows "
        "(Tan et al., NeurIPS 2024).", "",
        markdown_table(rows), "",
        "Test MSE / MAE: scaled space, mean ± sample standard deviation over seeds (no spread with one seed). "
        "Shuffled +%: how much the test error grows when every input window is shuffled in time (one fixed "
        "permutation per window, the same for every run). Seconds per step: median training step. Peak RSS: "
        "the training process, which trained that run alone. Where the setting samples its windows "
        "(max_train_windows, max_eval_windows), each seed draws its own sample, so the spread includes it.", "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores; load average {machine['load_average_before']} "
        f"before, {machine['load_average_after']} after. {record['note']}", "",
        "## Runs", "",
        "| run | mode | seed | status | test MSE | test MAE | shuffled MSE | +% | s / step | peak RSS |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m in measures:
        shuffled = (record["shuffle_tests"].get(m.run_id) or {}).get("shuffled_test_mse")
        lines.append(f"| {m.run_id} | {m.mode} | {m.seed} | {m.status} | {_f(m.test_mse)} | {_f(m.test_mae)} | "
                     f"{_f(shuffled)} | {format_percent(m.shuffled_mse_increase_pct)} | {_f(m.seconds_per_step, 3)} | "
                     f"{_f(m.peak_rss_bytes / 2 ** 30, 2) + ' GiB' if m.peak_rss_bytes else '-'} |")
    if record["baselines"]:
        lines += ["", "Baselines on the same test windows (seed " + str(record["baselines"]["seed"]) + "):", "",
                  "| forecaster | test MSE | test MAE |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {_f(values.get('mse'))} | {_f(values.get('mae'))} |"
                  for name, values in record["baselines"]["forecasters"].items()]
    lines += ["", "Modes: " + "; ".join(f"`{mode}` {MODE_LABELS.get(mode, mode)}" for mode in record["modes"]) + ".", ""]
    return "\n".join(lines)


def _baselines(infos: list) -> dict[str, Any] | None:
    """naive / seasonal naive / DLinear of the first run that has them (every seed tests the same windows)."""
    for info in infos:
        if info.baselines and isinstance(info.baselines.get("forecasters"), dict) and info.config is not None:
            return {"seed": info.config.training.seed, "run_id": info.run_id,
                    "forecasters": {name: {"mse": values.get("mse"), "mae": values.get("mae")}
                                    for name, values in info.baselines["forecasters"].items()}}
    return None


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _f(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if int(number) == 1 else "s")
