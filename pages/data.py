"""Data: every channel of the chosen dataset with its train/val/test split, description and statistics."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import streamlit as st

from explorer_ui import charts
from explorer_ui import shared
from explorer_ui.m4_view import render_m4_data
from explorer_ui.readiness import bytes_progress, run_with_progress
from timellm_core.data import (
    check_csv,
    damaged_names,
    describe_sentinels,
    fetch_dataset,
    find_dataset_file,
    find_sentinels,
    get_dataset_spec,
    load_frame,
    repaired_name,
)
from timellm_core.errors import TimeLLMError
from timellm_core.inspection import channel_statistics, downsample_for_plot
from timellm_core.safety import confine, safe_file_name

MAX_POINTS = 2000  # per channel; more makes the browser slow without showing more
UPLOAD_KEY = "data_upload"
UPLOAD_REPORT = "data_upload_report"
UPLOAD_ERROR = "data_upload_error"
UPLOAD_CHECKED = "data_upload_checked"  # (file id, fill option) of the upload last checked
FILL_KEY = "data_fill_missing"
SENTINEL_KEY = "data_sentinels_missing"

st.title("Data")
config = shared.working_config()
seq_len, pred_len = config.model.seq_len, config.model.pred_len


def uploads_dir() -> Path:
    """Where checked uploads are kept, so runs trained on them can be reopened later."""
    return Path(os.environ.get("TIMELLM_UPLOADS") or Path(__file__).resolve().parents[1] / "dataset" / "uploads")


def check_upload(upload: object) -> None:
    """Check an uploaded CSV with the data layer; keep it and select it when it passes.

    Runs in the page body, not in a widget callback, so a large file's check shows a spinner.
    Selecting it goes through the sidebar's pending choice (its widget was already drawn this run).
    """
    payload = upload.getvalue()
    try:
        report = check_csv(payload, seq_len=seq_len, pred_len=pred_len,
                           fill_missing=bool(st.session_state.get(FILL_KEY)))
    except TimeLLMError as error:
        message = str(error)
        if message.startswith("Too few rows"):
            message += f" (seq_len {seq_len} and pred_len {pred_len} are set on the Train page.)"
        st.session_state[UPLOAD_ERROR] = message
        return
    folder = uploads_dir()
    # The browser's file name is untrusted: keep one plain entry inside the upload folder.
    name = safe_file_name(upload.name, default="upload.csv")
    stem = Path(name).stem[:40] or "upload"
    try:
        path = confine(f"{stem}-{hashlib.sha256(payload).hexdigest()[:10]}.csv", folder, "upload")
        folder.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(payload)
    except OSError as error:
        st.session_state[UPLOAD_ERROR] = (f"The upload could not be saved in {folder}: {error.strerror or error}. "
                                          "Free some disk space (or set TIMELLM_UPLOADS to a writable folder).")
        return
    except TimeLLMError as error:
        st.session_state[UPLOAD_ERROR] = str(error)
        return
    st.session_state[UPLOAD_REPORT] = report
    st.session_state[shared.CUSTOM_PATH] = str(path)
    st.session_state[shared.CUSTOM_NAME] = name
    shared.choose_dataset_next_run("custom")
    st.rerun()


with st.expander("Use your own CSV", expanded=st.session_state.get(shared.DATASET) is None):
    st.markdown("A first column of timestamps, then one numeric column per channel. UTF-8 (with or "
                "without BOM) or GBK; comma, semicolon or tab separated. It is split 70/10/20 "
                f"and must give at least one window of seq_len {seq_len} + pred_len {pred_len} in every split.")
    st.checkbox("Fill missing values forward", key=FILL_KEY,
                help="Off: a CSV with empty cells is refused, naming the rows and columns.")
    upload = st.file_uploader("CSV file", type=["csv", "txt"], key=UPLOAD_KEY)
    if upload is None:
        # Removed, or the page was left (the uploader forgets its file): the selection stays.
        st.session_state.pop(UPLOAD_ERROR, None)
        st.session_state.pop(UPLOAD_CHECKED, None)
    elif st.session_state.get(UPLOAD_CHECKED) != (upload.file_id, bool(st.session_state.get(FILL_KEY))):
        st.session_state[UPLOAD_CHECKED] = (upload.file_id, bool(st.session_state.get(FILL_KEY)))
        st.session_state.pop(UPLOAD_ERROR, None)
        with st.spinner(f"Checking {upload.name} ..."):
            check_upload(upload)
    if st.session_state.get(UPLOAD_ERROR):
        st.error(st.session_state[UPLOAD_ERROR])
    report = st.session_state.get(UPLOAD_REPORT)
    if report is not None:
        st.success(f"{st.session_state.get(shared.CUSTOM_NAME)}: {report.rows} rows, {len(report.channels)} channels, "
                   f"step {report.freq or 'unknown'}. Selected as the dataset 'custom'.")
        for message in report.warnings:
            st.warning(message)

chosen = shared.selection()
if chosen.dataset is None:
    shared.need("a dataset", "in the sidebar, or upload a CSV above")
if chosen.dataset == "custom" and not chosen.custom_path:
    shared.need("a CSV file", "upload one above")

if shared.is_m4(chosen.dataset):
    render_m4_data(config)
    st.stop()

with shared.core_errors():
    spec = get_dataset_spec(chosen.dataset)
if spec.kind == "csv":
    try:
        find_dataset_file(spec)
    except TimeLLMError as missing:
        st.warning(str(missing))
        size = f" (~{spec.size_bytes / 1e6:.0f} MB)" if spec.size_bytes else ""
        if spec.url and st.button(f"Download {spec.name}{size}", key="data_fetch", type="primary"):
            if run_with_progress(lambda bar: fetch_dataset(spec.name, progress=bytes_progress(bar, spec.name)),
                                 f"Downloading {spec.name}"):
                st.rerun()
        st.stop()
prepared = shared.load_data(config)

# An upload is named by the person's own file name; where the server keeps it is nobody's business here.
st.subheader(chosen.dataset if chosen.dataset != "custom"
             else f"custom: {st.session_state.get(shared.CUSTOM_NAME) or 'uploaded CSV'}")
st.markdown(prepared.description)
frame: pd.DataFrame = prepared.frame
channels = list(prepared.channels)
shown_names = {name: repaired_name(name) for name in channels}
damaged = damaged_names(channels)
if damaged:
    st.caption("The file's header carries replacement characters (U+FFFD) where unit symbols were; shown "
               "repaired here: " + ", ".join(f"{shown}" for shown in damaged.values())
               + ". The names in the file, in runs and in prompts are unchanged.")


def sentinel_section() -> None:
    """Report sentinel values such as -9999, and let the person treat them as missing (here and in training)."""
    raw = load_frame(spec, config.data.data_path, config.data.fill_missing)[0]  # as read, before any treatment
    found = find_sentinels(raw, [name for name in raw.columns if name != "date"])
    if not found:
        return
    treated = bool(config.data.sentinels_missing)
    text = (f"Values that mark a missing measurement: {describe_sentinels(found)}. "
            + ("They are treated as missing (filled forward) on this page and in training."
               if treated else "As numbers they flatten the chart and throw off the scaler."))
    (st.info if treated else st.warning)(text)

    def toggle() -> None:
        updated = shared.working_config()
        updated.data.sentinels_missing = bool(st.session_state[SENTINEL_KEY])
        shared.set_working_config(updated)

    st.checkbox("Treat these values as missing (filled forward), here and in training", value=treated,
                key=SENTINEL_KEY, on_change=toggle)


if spec.kind != "synthetic" or config.data.data_path:
    sentinel_section()
columns = st.columns(5)
columns[0].metric("Rows", f"{len(frame):,}")
columns[1].metric("Channels", len(channels))
columns[2].metric("Step", prepared.freq or spec.freq or "?")
for column, split in zip(columns[2 + 1:], ("train", "test")):
    column.metric(f"{split} windows", f"{prepared.window_count(split):,}",
                  help=f"seq_len {seq_len}, pred_len {pred_len} (set on the Train page)")
st.caption(f"Split rule: {spec.split_rule}. Windows: train {prepared.window_count('train'):,}, "
           f"val {prepared.window_count('val'):,}, test {prepared.window_count('test'):,} "
           f"(seq_len {seq_len}, pred_len {pred_len}; the val and test splits start seq_len rows early so "
           "their first window has a full input; the shading shows each split's own rows).")

# Up to 8 channels by default (Weather has 21, ECL 321): the first six and the target.
default = channels if len(channels) <= 8 else channels[:6] + [c for c in prepared.target_channels
                                                               if c not in channels[:6]]
shown = st.multiselect("Channels to draw", channels, default=default, key=f"data_channels_{chosen.dataset}",
                       format_func=shown_names.get)
if not shown:
    st.info("Pick at least one channel to draw.")
else:
    borders = prepared.borders
    spans = {"train": borders["train"],
             "val": (max(borders["val"][0], borders["train"][1]), borders["val"][1]),
             "test": (max(borders["test"][0], borders["val"][1]), borders["test"][1])}
    if borders["test"][1] < len(frame):
        spans["unused"] = (borders["test"][1], len(frame))
    down = downsample_for_plot(frame, shown, MAX_POINTS)
    st.plotly_chart(charts.series_with_splits(down.frame.rename(columns=shown_names),
                                              [shown_names[name] for name in shown], spans), key="data_chart")
    if down.method != "none":
        st.caption(f"Drawn with {down.points:,} of {down.original_rows:,} points per channel "
                   f"(LTTB downsampling keeps peaks and troughs); statistics below use every row. "
                   "Zoom in for the shape; the model always sees every row.")
    if "unused" in spans:
        st.caption(f"Rows from {spans['unused'][0]:,} on are outside the standard split and never used.")

st.subheader("Per-channel statistics (original units)")
stats = channel_statistics(frame, channels, prepared.borders["train"]).rename(index=shown_names)
st.dataframe(stats.style.format(precision=3), key="data_stats")
st.caption("'train mean' and 'train std' are the standard scaler's statistics: every split is scaled with "
           "them, and losses and MSE/MAE are reported in that scaled space.")
