"""Forecast: a run's test forecasts against the truth and simple baselines, with errors per horizon step."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import streamlit as st

from explorer_ui import charts
from explorer_ui import shared
from explorer_ui.comparison import render_comparison
from explorer_ui.future import render_future_forecast
from explorer_ui.m4_forecast import render_m4_forecast
from explorer_ui.model import inspected
from timellm_core.baselines import baseline_forecasts, fit_dlinear
from timellm_core.inspection import errors_per_step, forecast_table

st.title("Forecast")
target = inspected(need_run=True)
config, data, run = target.config, target.data, target.run
predictions_path = run.predictions_path
if not predictions_path.is_file():
    st.info(f"Run {run.run_id} has no test forecasts yet ({run.status}): they are written when a run finishes "
            "its final test on the best weights. Choose a finished run, or let this one finish.")
    st.stop()


@st.cache_data(show_spinner=False, max_entries=4)
def load_predictions(path: str, mtime: float) -> dict[str, np.ndarray]:
    """predictions.npz of a run (the final test on its best weights)."""
    with np.load(path) as saved:
        return {name: saved[name] for name in saved.files}


try:
    predictions = load_predictions(str(predictions_path), predictions_path.stat().st_mtime)
    if not {"forecast", "truth", "window_index"} <= set(predictions):
        raise ValueError("forecast, truth or window_index is missing")
except (OSError, ValueError, zipfile.BadZipFile) as error:  # np.load never unpickles (allow_pickle=False)
    st.error(f"The test forecasts of run {run.run_id} (predictions.npz) are damaged ({error}). "
             "Choose another run, or train this one again to write them anew.")
    st.stop()
metrics = run.test_metrics or {}

if shared.is_m4(config.data.name):
    render_m4_forecast(target, predictions, metrics)
    render_future_forecast(target)  # declined for M4, with the reason
    st.stop()


@st.cache_resource(show_spinner=False, max_entries=2)
def fitted_dlinear(run_id: str, _data: object, max_train_windows: int | None, seed: int) -> object:
    """DLinear trained on the run's train windows (same subset and seed), once per run."""
    return fit_dlinear(_data, epochs=5, max_train_windows=max_train_windows, max_eval_windows=None, seed=seed)


forecast, truth = predictions["forecast"], predictions["truth"]  # (W, pred_len, N_out), scaled
window_index = predictions["window_index"]
channels = [str(c) for c in predictions.get("target_channels", data.target_channels)]
seq_len, pred_len = config.model.seq_len, config.model.pred_len

# --- overall -------------------------------------------------------------------------------------
columns = st.columns(4)
columns[0].metric("test MSE (scaled)", f"{metrics.get('test_mse', float(np.mean((forecast - truth) ** 2))):.4f}")
columns[1].metric("test MAE (scaled)", f"{metrics.get('test_mae', float(np.mean(np.abs(forecast - truth)))):.4f}")
columns[2].metric("test windows", f"{len(window_index):,} of {data.window_count('test'):,}")
columns[3].metric("MSE (original units)", f"{metrics.get('test_mse_original', float('nan')):.4g}")
st.caption(metrics.get("note", "MSE/MAE over the run's test windows, in the scaled space."))
render_comparison(run, key="forecast_comparison")
st.plotly_chart(charts.per_step_errors(errors_per_step(forecast, truth)), key="forecast_per_step")

# --- one window ----------------------------------------------------------------------------------
st.subheader("One test window")
left, middle, right = st.columns([3, 1, 1])
# Windows are named by their index in the test split everywhere (slider, chart title, CSV): the run
# may have evaluated a sample of them, so a position in that sample would be a second, different number.
window = int(left.select_slider(f"Test window (index in the test split; the run evaluated {len(window_index):,})",
                                options=sorted(int(w) for w in window_index), key="forecast_window"))
position = int(np.flatnonzero(window_index == window)[0])
channel = middle.selectbox("Channel", channels, index=len(channels) - 1, key="forecast_channel")
units = right.radio("Units", ["original", "scaled"], key="forecast_units")
baselines = st.multiselect("Overlay baselines", ["naive", "seasonal_naive", "dlinear"], default=[],
                           key="forecast_baselines",
                           help=f"naive repeats the last value; seasonal naive repeats the last season "
                                f"({data.period} steps); DLinear is a linear model on trend + remainder, trained "
                                "here on the run's train windows (a few seconds, once).")
c_out = channels.index(channel)
c_in = list(data.channels).index(channel)
start = data.border("test")[0] + window
rows = data.frame.iloc[start:start + seq_len + pred_len]
dates = pd.DatetimeIndex(rows["date"])
x = data.windows("test")[window][0]
x = np.asarray(x, dtype=np.float32)[None]  # (1, T, N_in), scaled
if units == "original":
    context = rows[channel].to_numpy(dtype=float)[:seq_len]
    shown_truth = predictions["truth_original"][position, :, c_out]
    shown_forecast = predictions["forecast_original"][position, :, c_out]
else:
    context = x[0, :, c_in]
    shown_truth, shown_forecast = truth[position, :, c_out], forecast[position, :, c_out]

overlays: dict[str, np.ndarray] = {}
scaled_baselines: dict[str, np.ndarray] = {}  # name -> (1, pred_len, N_out)
if baselines:
    dlinear = None
    if "dlinear" in baselines:
        with shared.core_errors(), st.spinner("Fitting DLinear on the train windows (once per run) ..."):
            dlinear = fitted_dlinear(run.run_id, data, config.training.max_train_windows, int(config.training.seed))
    with shared.core_errors():
        scaled_baselines = baseline_forecasts(data, x, dlinear=dlinear, names=tuple(baselines))
    for name, value in scaled_baselines.items():
        value = data.inverse_transform(value) if units == "original" else value
        overlays[name.replace("_", " ")] = value[0, :, c_out]
st.plotly_chart(charts.forecast_chart(dates[:seq_len], context, dates[seq_len:], shown_truth, shown_forecast,
                                      overlays, f"Test window {window}, {channel}",
                                      "value" if units == "original" else "scaled value"), key="forecast_chart")
window_scores = {"Time-LLM": (float(np.mean((forecast[position, :, c_out] - truth[position, :, c_out]) ** 2)),
                              float(np.mean(np.abs(forecast[position, :, c_out] - truth[position, :, c_out]))))}
for name, value in scaled_baselines.items():
    diff = value[0, :, c_out] - truth[position, :, c_out]
    window_scores[name.replace("_", " ")] = (float(np.mean(diff ** 2)), float(np.mean(np.abs(diff))))
st.dataframe(pd.DataFrame([{"forecaster": name, "MSE (scaled)": mse, "MAE (scaled)": mae}
                           for name, mse, mae in ((k, *v) for k, v in window_scores.items())]),
             hide_index=True, key="forecast_window_scores")
st.caption("This window and channel only; the metrics above cover every evaluated window and channel.")

# --- download ------------------------------------------------------------------------------------
test_start = data.border("test")[0]
horizon_dates = [pd.DatetimeIndex(data.frame["date"].iloc[test_start + w + seq_len:test_start + w + seq_len + pred_len])
                 .to_numpy() for w in window_index]
table = forecast_table(forecast, truth, window_index, channels, predictions.get("forecast_original"),
                       predictions.get("truth_original"), horizon_dates)
st.download_button("Download the forecasts (CSV)", table.to_csv(index=False).encode("utf-8"),
                   file_name=f"{run.run_id}-forecasts.csv", mime="text/csv", key="forecast_download")

# --- past the end of the data --------------------------------------------------------------------
render_future_forecast(target)
