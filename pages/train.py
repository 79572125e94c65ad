"""Train: presets and settings, Start / Stop, the live loss, progress with ETA, and the run history."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer_ui import charts
from explorer_ui import jobs
from explorer_ui import shared
from explorer_ui.ablation import render_ablation_studies
from explorer_ui.comparison import render_comparison
from explorer_ui.train_form import render_form, render_presets, setting_of, settings_summary
from timellm_core.backbones import resolve_backbone_spec
from timellm_core.errors import TimeLLMError
from timellm_core.inspection import epoch_boundaries, epoch_losses, step_losses
from timellm_core.training import load_run, stop_report

MY_JOB = shared.MY_JOB  # run id of the job this session started
POLL_SECONDS = 2.0  # every poll costs the server (and each browser) a redraw, on the machine that trains
MODES = {"frozen": "frozen LLM", "none": "no LLM", "attention": "one attention layer",
         "transformer": "one transformer block", "random": "random LLM"}

st.title("Train")
registry = jobs.registry()
chosen = shared.selection()


@st.cache_resource(show_spinner=False, max_entries=4)
def live_charts(run_id: str, drawn_count: int, last_time: float, _events: list) -> tuple:
    """The loss charts of a run, built once per new step or epoch and shared by every session watching.

    Building Plotly figures is most of what a progress poll costs; the server shares its core with
    training, so each figure is made once, not once per session and second.
    """
    steps, epochs = step_losses(_events), epoch_losses(_events)
    step_chart = (charts.step_loss(steps["global_step"], steps["loss"], epoch_boundaries(_events))
                  if not steps.empty else None)
    return step_chart, charts.epoch_metrics(epochs) if not epochs.empty else None


def live_panel(run_id: str) -> None:
    """Progress, ETA and loss charts of one job, refreshed while it runs."""
    job = registry.get(run_id)
    if job is None:
        return
    summary = jobs.job_summary(job)
    mine = st.session_state.get(MY_JOB) == run_id
    head, stop = st.columns([4, 1], vertical_alignment="center")
    head.markdown(f"**Run `{run_id}`** · {job.config.data.name} · {job.config.backbone.name} · "
                  f"llm_mode {job.config.model.llm_mode}" + ("" if mine else " · started in another session"))
    events = job.events()
    if summary.running:
        if mine:  # a run belongs to the session that started it: nobody else can stop it
            stop.button("Stop", key="train_stop", on_click=job.cancel, type="secondary", width="stretch",
                        help="Stops before the next step (or evaluation batch); the weights of the best "
                             "finished epoch are kept, if an epoch has finished.")
        else:
            stop.caption("Only the session that started this run can stop it.")
        st.progress(summary.progress, text=f"{summary.phase} · {summary.progress_text}")
    elif summary.status == "finished":
        st.success("Finished: the best weights were reloaded and tested on the test split.")
    elif summary.status == "cancelled":
        st.warning(stop_report(events, run_id))
    elif summary.status == "failed":
        st.error(job.error or "Training failed.")
    drawn = [e for e in events if e.get("type") in ("step", "epoch")]
    step_chart, epoch_chart = live_charts(run_id, len(drawn), drawn[-1]["time"] if drawn else 0.0, drawn)
    left, right = st.columns(2)
    with left:
        if step_chart is None:
            st.info("Waiting for the first training step (preparing data, loading the backbone) ...")
        else:
            st.plotly_chart(step_chart, key="train_step_chart")
    with right:
        if epoch_chart is None:
            st.caption("Train / val / test per epoch appear after the first epoch.")
        else:
            st.plotly_chart(epoch_chart, key="train_epoch_chart")
    metrics = job.test_metrics
    if metrics:
        columns = st.columns(4)
        columns[0].metric("test MSE (scaled)", f"{metrics['test_mse']:.4f}")
        columns[1].metric("test MAE (scaled)", f"{metrics['test_mae']:.4f}")
        columns[2].metric("test windows",
                          f"{metrics.get('test_windows', '?')} of {metrics.get('test_windows_total', '?')}")
        if metrics.get("smape") is not None:
            columns[3].metric("sMAPE / OWA", f"{metrics['smape']:.2f} / {metrics.get('owa', float('nan')):.3f}")
        st.caption(metrics.get("note", ""))
    if summary.status == "finished":
        render_comparison(load_run(job.run_dir), key="train_comparison")
        without_llm_button(job.config)


def without_llm_button(config) -> None:
    """One click from a frozen-LLM run to the same run without the LLM (the ablation of Tan et al., 2024)."""
    if config.model.llm_mode != "frozen":
        return
    busy = registry.active() is not None
    if st.button("Train the same run without the LLM", key="train_without_llm", disabled=busy,
                 help="The same data, lengths, seed and training settings with llm_mode none: the patch "
                      "embeddings go straight to the output head. Does the frozen LLM help?"):
        ablation = config.copy()
        ablation.model.llm_mode = "none"
        shared.set_working_config(ablation)
        start(ablation)


def job_section() -> None:
    active = registry.active()
    shown = active or (registry.get(st.session_state[MY_JOB]) if st.session_state.get(MY_JOB) else None)
    if shown is None:
        return
    st.subheader("Training now" if shown.is_active else "Last run from this session")
    running = shown.is_active

    @st.fragment(run_every=POLL_SECONDS if running else None)
    def poll() -> None:
        live_panel(shown.run_id)
        if running and not shown.is_active:
            jobs.refresh_runs()
            st.rerun()  # finished: redraw the whole page (form enabled, run in the history, selected in the sidebar)

    poll()


def start(config) -> None:
    """Validate, then hand the run to a job in a process of its own (it loads data and backbone there).

    A process, not a thread of this server: every browser session's reruns run Python here, and a
    training thread would share one interpreter lock with all of them.
    """
    with shared.core_errors():
        config.validate()
    try:
        job = registry.start(config, process=True)
    except TimeLLMError as error:
        st.error(str(error))
        return
    st.session_state[MY_JOB] = job.run_id
    jobs.refresh_runs()
    st.rerun()


job_section()

st.subheader("Settings")
active = registry.active()
if chosen.dataset is None or chosen.backbone is None:
    st.info("Choose a dataset and a backbone in the sidebar first; then start a run here. "
            "Tiny backbones train in seconds; smollm2-135m with the cpu-quick preset takes a few minutes on a CPU (each preset's time is shown next to it).")
else:
    render_presets()
    config = shared.working_config()
    with shared.core_errors():
        spec = resolve_backbone_spec(chosen.backbone)
    hidden, layers = spec.hidden_size, spec.num_layers
    m4 = shared.is_m4(chosen.dataset)
    if active is not None:
        if st.session_state.get(MY_JOB) == active.run_id:
            st.info(f"A run is in progress ({active.run_id}, started by this session; its progress is shown "
                    "above). One run trains at a time on this server: wait for it or stop it, then start yours.")
        else:
            st.info(f"A run is in progress ({active.run_id}, started by another session; its progress is shown "
                    "above). One run trains at a time on this server, and only the session that started it can "
                    "stop it: wait for it to finish, then start yours.")
    st.caption(f"Dataset **{config.data.name}**" + (f" ({config.data.seasonal_patterns})" if m4 else "")
               + f", backbone **{config.backbone.name}**.")
    new_config = render_form(config, hidden, layers, m4, "Start training", disabled=active is not None,
                             channels=shared.channel_names(config))
    if new_config is not None:
        shared.set_working_config(new_config)
        start(new_config)

st.subheader("Run history")
runs = jobs.list_run_summaries(usable_only=False)
if not runs:
    st.caption(f"No runs yet in {jobs.runs_dir()}.")
    st.stop()
rows = []
for run in runs:
    info, tested = run.info, run.info.test_metrics or {}
    # The final test MSE first: it is what a comparison of runs is about, and it stays on screen.
    row = {"test MSE": tested.get("test_mse"), "test MAE": tested.get("test_mae"), "run": run.run_id,
           "status": info.status, "dataset": info.config.data.name if info.config else "",
           "backbone": info.config.backbone.name if info.config else ""}
    row.update(settings_summary(info.config) if info.config is not None else {})
    if row.get("fast") and info.fast_precision:  # which precision the fast path ran in, and why
        row["fast"] = f"{info.fast_precision.get('name')}: {info.fast_precision.get('reason')}"
    row.update({"epochs done": info.epochs_done, "best val MSE": info.best_val_mse})
    rows.append(row)
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="train_history")
render_ablation_studies([run.info for run in runs])  # the runs of `python -m timellm_core ablate`, side by side


readable = [run for run in runs if run.config is not None]
if readable:
    ALL = "every dataset and setting"
    settings = list(dict.fromkeys(setting_of(run.config) for run in readable))  # newest run's setting first
    chosen_setting = st.selectbox("Compare runs of", settings + [ALL], key="train_overlay_setting",
                                  help="Test MSE is comparable only between runs of the same data, features and "
                                       "lengths: the newest run's setting is shown first.")
    in_setting = [run for run in readable if chosen_setting == ALL or setting_of(run.config) == chosen_setting]
    tested = [run for run in in_setting if run.info.test_metrics and run.info.test_metrics.get("test_mse") is not None]
    if tested:
        st.plotly_chart(charts.final_test_bars([run.run_id for run in tested],
                                               [run.info.test_metrics["test_mse"] for run in tested],
                                               [run.config.model.llm_mode for run in tested]),
                        key="train_final_test_chart")
    else:
        st.caption("No run of this setting has finished its final test yet.")
    with_epochs = [run for run in in_setting if run.info.epoch_events()]
    if with_epochs:
        picked = st.multiselect("Overlay runs, per epoch", [run.run_id for run in with_epochs],
                                default=[run.run_id for run in with_epochs[:3]], key="train_overlay_runs",
                                help="For example the same settings with llm_mode frozen and none: does the LLM "
                                     "help?")
        names = {"val": "validation MSE", "test": "test MSE", "train": "training loss"}
        metric = st.radio("Metric", list(names), horizontal=True, key="train_overlay_metric", format_func=names.get)
        curves = {}
        for run in with_epochs:
            if run.run_id in picked:
                frame = epoch_losses(run.info.events)
                if frame[metric].notna().any():
                    label = f"{run.run_id} · {MODES.get(run.config.model.llm_mode, run.config.model.llm_mode)}"
                    curves[label] = frame
        if curves:
            st.plotly_chart(charts.runs_overlay(curves, metric, names[metric]), key="train_overlay_chart")
        elif metric == "test":
            st.caption("These runs were not tested every epoch (the \"Test every epoch\" setting), so there is no "
                       "per-epoch test MSE to draw; their final test MSE is in the chart above.")
        else:
            st.caption("The chosen runs have no values for this metric yet.")
