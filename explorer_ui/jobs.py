"""Runs on disk and the background training job, as the sidebar and the Train page see them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from explorer_ui import shared
from timellm_core.training import JobRegistry
from timellm_core.training.runs import default_runs_dir, list_runs


@dataclass(frozen=True)
class RunSummary:
    """One run for a picker: its id, a readable label and its config (None when unreadable)."""

    run_id: str
    label: str
    status: str
    config: Any  # RunConfig | None
    info: Any  # timellm_core.training.runs.RunInfo


@st.cache_resource(ttl=3, show_spinner=False, max_entries=4)
def _cached_runs(runs_dir: str, jobs_state: tuple[tuple[str, str], ...]) -> list[Any]:
    """Reading every run folder is slow-ish: once per 3 s, and again when a job here changes status."""
    return list_runs(runs_dir)


def _jobs_state() -> tuple[tuple[str, str], ...]:
    """(run id, status) of this server's jobs: part of the run list's cache key."""
    return tuple((job.run_id, job.status) for job in registry().jobs())


def runs_dir() -> str:
    return str(default_runs_dir())


def list_run_summaries(usable_only: bool = True) -> list[RunSummary]:
    """Runs under the runs folder, newest first (cached briefly).

    ``usable_only`` keeps runs whose config can be rebuilt and that saved trained weights.
    """
    summaries = []
    for info in _cached_runs(runs_dir(), _jobs_state()):
        if usable_only and (info.config is None or not info.has_model):
            continue
        summaries.append(RunSummary(info.run_id, _label(info), info.status, info.config, info))
    return summaries


def refresh_runs() -> None:
    """Forget the cached run list (after a job finished or a run was started)."""
    _cached_runs.clear()


def _label(info: Any) -> str:
    """What tells runs apart first (dataset, backbone, lengths, the ablation, the test MSE), the time last:
    the sidebar cuts long labels at the right."""
    config = info.config
    if config is None:
        return f"{info.run_id} ({info.status})"
    when = time.strftime("%m-%d %H:%M", time.localtime(info.created)) if info.created else info.run_id
    mode = {"frozen": "", "none": " · no LLM"}.get(config.model.llm_mode, f" · llm {config.model.llm_mode}")
    status = "" if info.status == "finished" else f" · {info.status}"
    mse = (info.test_metrics or {}).get("test_mse")
    score = f" · MSE {mse:.3f}" if isinstance(mse, (int, float)) else ""
    return (f"{config.data.name} · {config.backbone.name} · {config.model.seq_len}→{config.model.pred_len}"
            f"{mode}{score}{status} · {when}")


def find_run(run_id: str | None) -> RunSummary | None:
    if not run_id:
        return None
    return next((run for run in list_run_summaries(usable_only=False) if run.run_id == run_id), None)


# ------------------------------------------------------------------------------------------
# The training job
# ------------------------------------------------------------------------------------------


def registry() -> JobRegistry:
    """The process-wide JobRegistry."""
    return shared.job_registry()


def current_job_by_id(run_id: str) -> Any | None:
    """The job this server started for ``run_id``, or None."""
    return registry().get(run_id)


def current_job() -> Any | None:
    """The running job if there is one, else the most recent one this server started, else None."""
    jobs = registry()
    return jobs.active() or jobs.latest()


@dataclass(frozen=True)
class JobSummary:
    run_id: str
    status: str
    running: bool
    progress: float  # 0..1: training steps, evaluation passes and the final test
    progress_text: str  # "37%, about 1 min 05 s left"
    phase: str  # "Epoch 2 of 3: validating, batch 4 of 9"
    headline: str


def job_summary(job: Any) -> JobSummary:
    """A plain view of a job for the sidebar and the Train page."""
    status = str(job.status)
    view = job.view
    running = status in ("queued", "running")
    progress = float(view.fraction or 0.0)
    eta = view.eta_s
    eta_text = f", about {_duration(eta)} left" if running and eta is not None else ""
    text = f"{progress:.0%}{eta_text}"
    headline = {"queued": "Starting ...", "running": f"{view.detail} · {text}", "finished": "Finished.",
                "failed": "Failed (see the Train page).", "cancelled": "Stopped."}.get(status, status)
    return JobSummary(str(job.run_id), status, running, min(max(progress, 0.0), 1.0), text, view.detail, headline)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"

