"""The Forecast page for an M4 run: one series' context, forecast and truth; sMAPE, MASE and OWA."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from explorer_ui import charts
from timellm_core import metrics as m4_metrics
from timellm_core.inspection import forecast_table

_BENCHMARKS = ("naive", "seasonal_naive", "naive2")


def render_m4_forecast(target: Any, predictions: dict[str, np.ndarray], metrics: dict[str, Any]) -> None:
    data, run = target.data, target.run
    meta = data.pattern
    forecast = predictions["forecast_original"] if "forecast_original" in predictions else predictions["forecast"]
    truth = predictions["truth_original"] if "truth_original" in predictions else predictions["truth"]
    forecast, truth = forecast.reshape(forecast.shape[0], -1), truth.reshape(truth.shape[0], -1)  # (n, horizon)
    rows = predictions["window_index"].astype(int)  # series positions, in series order

    st.markdown(f"M4 **{meta.name}**: horizon {meta.horizon}, seasonal period m = {meta.frequency}. sMAPE and MASE "
                "are averaged over series; OWA is their mean relative to the Naive2 benchmark (below 1 beats it).")
    table = [{"forecaster": "Time-LLM (this run)", "sMAPE": metrics.get("smape"), "MASE": metrics.get("mase"),
              "OWA": metrics.get("owa")}]
    for name in _BENCHMARKS:
        if metrics.get(f"{name}_smape") is not None:
            table.append({"forecaster": name.replace("_", " "), "sMAPE": metrics.get(f"{name}_smape"),
                          "MASE": metrics.get(f"{name}_mase"), "OWA": metrics.get(f"{name}_owa")})
    if metrics.get("smape") is None:
        st.warning("This run's test metrics have no sMAPE/MASE/OWA (the test covered a subset the M4 scores "
                   "could not be matched to). The chart below still compares forecasts and truth.")
    st.dataframe(pd.DataFrame(table), hide_index=True, key="m4_scores")
    st.caption(f"Over {len(rows)} of {len(data.series_ids)} series. {metrics.get('note', '')}")

    ids = [data.series_ids[i] for i in rows]
    chosen = st.selectbox("Series", ids, key="m4_forecast_series")
    position = ids.index(chosen)
    series = int(rows[position])
    history = np.asarray(data.train_series(series), dtype=float)
    show_all = st.toggle("Whole history", value=False, key="m4_forecast_history",
                         help=f"Off: the model's input, the last {meta.seq_len} values.")
    context = history if show_all else history[-meta.seq_len:]
    context_x = np.arange(history.size - context.size, history.size)
    horizon_x = np.arange(history.size, history.size + meta.horizon)
    overlays = {}
    picked = st.multiselect("Overlay benchmarks", list(_BENCHMARKS), default=["naive2"], key="m4_forecast_benchmarks")
    benchmarks = data.benchmark_forecasts() if picked else {}
    for name in picked:
        overlays[name.replace("_", " ")] = benchmarks[name][series]
    figure = charts.forecast_chart(context_x, context, horizon_x, truth[position], forecast[position], overlays,
                                   f"{chosen}: forecast of the {meta.horizon}-step test horizon")
    figure.update_xaxes(title_text="step")
    st.plotly_chart(figure, key="m4_forecast_chart")
    scale_ok = np.isfinite(m4_metrics.mase_scale(history, meta.frequency))
    one = {"sMAPE": m4_metrics.smape(forecast[position], truth[position]),
           "MASE": m4_metrics.mase(forecast[position], truth[position], history, meta.frequency) if scale_ok else None}
    st.caption(f"This series: sMAPE {one['sMAPE']:.2f}"
               + (f", MASE {one['MASE']:.3f}" if one["MASE"] is not None else ", MASE undefined (history too short)")
               + ".")
    csv = forecast_table(forecast[..., None], truth[..., None], rows, ["value"])
    csv.insert(1, "series", np.asarray(data.series_ids)[csv["test_window"].to_numpy()])
    st.download_button("Download the forecasts (CSV)", csv.to_csv(index=False).encode("utf-8"),
                       file_name=f"{run.run_id}-forecasts.csv", mime="text/csv", key="m4_forecast_download")
