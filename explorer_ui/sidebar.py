"""The sidebar on every page: dataset, backbone and run pickers, and the training job's status."""

from __future__ import annotations

import streamlit as st

from explorer_ui import shared
from explorer_ui.jobs import current_job, current_job_by_id, job_summary, list_run_summaries, refresh_runs
from timellm_core.backbones import is_available, list_backbones
from timellm_core.data import find_dataset_file, get_dataset_spec, list_datasets
from timellm_core.data.m4 import M4_PATTERNS

FINISHED_SELECTED = "sidebar_finished_selected"  # this session's finished run, once selected


def render_sidebar() -> None:
    with st.sidebar:
        st.markdown("#### Your choices")
        _adopt_pending_run()
        _dataset_picker()
        _backbone_picker()
        _run_picker()
        st.divider()
        _job_status()


def _adopt_pending_run() -> None:
    """A run chosen on a page, or this session's run that has just finished, is selected before the
    pickers are drawn (a widget's value cannot change once it is on the page)."""
    mine = st.session_state.get(shared.MY_JOB)
    if mine and st.session_state.get(FINISHED_SELECTED) != mine:
        job = current_job_by_id(mine)
        if job is not None and job.status == "finished":
            st.session_state[FINISHED_SELECTED] = mine  # once: the person may choose another run afterwards
            refresh_runs()
            shared.choose_run_next_run(mine)
    pending = st.session_state.pop(shared.PENDING_RUN, None)
    if pending is None or not any(run.run_id == pending for run in list_run_summaries()):
        return
    st.session_state[shared.RUN] = pending
    _adopt_run_choices()


def _dataset_picker() -> None:
    specs = list_datasets()
    names = [spec.name for spec in specs]
    if shared.CUSTOM_PATH not in st.session_state and "custom" in names:
        names.remove("custom")  # offered once a CSV is uploaded on the Data page
    pending = st.session_state.pop(shared.PENDING_DATASET, None)
    if pending in names:  # chosen on a page (an upload): select it, and forget a run made on other data
        st.session_state[shared.DATASET] = pending
        st.session_state[shared.RUN] = shared.NO_RUN
    if shared.DATASET not in st.session_state:  # a new session: open on real data when it is here
        st.session_state[shared.DATASET] = _first_dataset(names)
    if st.session_state.get(shared.DATASET) not in names:
        st.session_state[shared.DATASET] = None
    st.selectbox("Dataset", names, index=None, key=shared.DATASET, placeholder="Choose a dataset",
                 on_change=_forget_mismatched_run,
                 format_func=lambda name: _dataset_label(name), help="The series to explore and train on.")
    if shared.is_m4(st.session_state.get(shared.DATASET)):
        patterns = list(M4_PATTERNS)  # Yearly ... Hourly; the ones not downloaded say so on the Data page
        if st.session_state.get(shared.M4_PATTERN) not in patterns:
            st.session_state[shared.M4_PATTERN] = "Hourly" if "Hourly" in patterns else patterns[0]
        st.selectbox("M4 seasonal pattern", patterns, key=shared.M4_PATTERN, on_change=_forget_mismatched_run)


def _first_dataset(names: list[str]) -> str | None:
    """ETTh1 when its file is found (the paper's first benchmark), else the generated Synthetic series."""
    try:
        find_dataset_file(get_dataset_spec("ETTh1"))
        return "ETTh1"
    except Exception:  # noqa: BLE001 - any failure to find the file means: fall back to Synthetic
        return "Synthetic" if "Synthetic" in names else None


def _dataset_label(name: str) -> str:
    if name == "custom":
        return f"custom: {st.session_state.get(shared.CUSTOM_NAME, 'uploaded CSV')}"
    return name


def _backbone_picker() -> None:
    specs = {spec.name: spec for spec in list_backbones()}
    if shared.BACKBONE not in st.session_state:  # a new session: the default backbone when it is here
        default = specs.get("smollm2-135m")
        st.session_state[shared.BACKBONE] = default.name if default and is_available(default) else None
    if st.session_state.get(shared.BACKBONE) not in specs:
        st.session_state[shared.BACKBONE] = None

    def label(name: str) -> str:
        spec = specs[name]
        if spec.tiny:
            return f"{name} (tiny, random)"
        return name if is_available(spec) else f"{name} (not downloaded)"

    st.selectbox("Backbone", list(specs), index=None, key=shared.BACKBONE, placeholder="Choose a backbone",
                 format_func=label, on_change=_forget_mismatched_run,
                 help="The frozen language model. Tiny ones are random and instant; fetch real ones "
                      "on the Backbone page.")


def _run_picker() -> None:
    runs = list_run_summaries()
    ids = [shared.NO_RUN] + [run.run_id for run in runs]
    if st.session_state.get(shared.RUN) not in ids:
        st.session_state[shared.RUN] = shared.NO_RUN
    labels = {run.run_id: run.label for run in runs}
    st.selectbox("Run", ids, key=shared.RUN, format_func=lambda run_id: labels.get(run_id, run_id),
                 on_change=_adopt_run_choices,
                 help="A finished training run: the Patches, Prompt and Forecast pages then use its "
                      "trained weights. Choosing one also selects its dataset and backbone.")


def _selected_run_summary():
    """The summary of the run chosen in the sidebar, or None (no run chosen, or it is gone)."""
    run_id = st.session_state.get(shared.RUN)
    if run_id in (None, shared.NO_RUN):
        return None
    return next((run for run in list_run_summaries() if run.run_id == run_id), None)


def _adopt_run_choices() -> None:
    """Choosing a run selects its dataset and backbone, so every page shows the same thing."""
    summary = _selected_run_summary()
    if summary is None:
        return
    data = summary.config.data
    st.session_state[shared.DATASET] = data.name
    if data.name == "custom" and data.data_path:
        st.session_state[shared.CUSTOM_PATH] = data.data_path
        st.session_state.setdefault(shared.CUSTOM_NAME, data.data_path)
    if shared.is_m4(data.name) and data.seasonal_patterns:
        st.session_state[shared.M4_PATTERN] = data.seasonal_patterns
    st.session_state[shared.BACKBONE] = summary.config.backbone.name


def _forget_mismatched_run() -> None:
    """A run stays selected only while the dataset and backbone pickers agree with it."""
    summary = _selected_run_summary()
    if summary is None:
        return
    data = summary.config.data
    same = (st.session_state.get(shared.DATASET) == data.name
            and st.session_state.get(shared.BACKBONE) == summary.config.backbone.name
            and (not shared.is_m4(data.name) or st.session_state.get(shared.M4_PATTERN) == data.seasonal_patterns))
    if not same:
        st.session_state[shared.RUN] = shared.NO_RUN


def _job_status() -> None:
    job = current_job()
    if job is None:
        st.caption("Training: no run has started on this server yet.")
        return
    running = job.is_active

    @st.fragment(run_every=2.0 if running else None)
    def status_panel() -> None:
        summary = job_summary(job)
        st.markdown(f"**Training job** `{summary.run_id}`")
        if summary.running:
            st.progress(summary.progress, text=summary.headline)
        else:
            st.caption(summary.headline)
        if running and not summary.running:
            refresh_runs()
            st.rerun()  # it just ended: redraw everything so the run list and the pages see it

    status_panel()
