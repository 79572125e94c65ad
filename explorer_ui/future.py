"""The Forecast page's "Forecast the future" section: the run's model forecasts the steps after the last row
of its dataset, or of an uploaded CSV with the same channels (``timellm_core.prediction``)."""

from __future__ import annotations

import io
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from explorer_ui import charts
from explorer_ui import shared
from timellm_core.data.future_input import M4_DECLINED
from timellm_core.errors import TimeLLMError
from timellm_core.prediction import FutureForecast, forecast_future

SOURCE_KEY = "future_source"
UPLOAD_KEY = "future_upload"
FILL_KEY = "future_fill_missing"
EARLIER_KEY = "future_earlier"
CUTOFF_KEY = "future_cutoff"
CHANNEL_KEY = "future_channel"
OWN_DATA = "the run's dataset"
UPLOADED = "an uploaded CSV"


@st.cache_data(show_spinner=False, max_entries=8)
def _forecast(_model: Any, model_key: str, _data: Any, run_id: str, payload: bytes | None, name: str | None,
              cutoff: int | None, fill_missing: bool, sentinels_missing: bool) -> FutureForecast:
    """One forecast per (model weights, file, cut-off, settings): reruns of the page cost nothing."""
    source = None
    if payload is not None:
        source = io.BytesIO(payload)
        source.name = name  # messages name the person's file
    return forecast_future(_model, _data, source, cutoff, fill_missing=fill_missing,
                           sentinels_missing=sentinels_missing, run_id=run_id)


def future_chart(result: FutureForecast, channel: str) -> go.Figure:
    """Context, forecast and (when the file has it) the truth of one channel, on the data's time axis."""
    def points(frame: Any) -> dict[str, list]:  # plain lists, as the other charts send them
        return {"x": [stamp.isoformat() for stamp in frame["date"]], "y": frame[channel].tolist()}

    fig = go.Figure()
    fig.add_trace(go.Scatter(**points(result.context), mode="lines", name="input context",
                             line=dict(color=charts.CONTEXT, width=1.3)))
    if result.truth is not None:
        fig.add_trace(go.Scatter(**points(result.truth), mode="lines", name="ground truth",
                                 line=dict(color=charts.TRUTH, width=2)))
    fig.add_trace(go.Scatter(**points(result.forecast), mode="lines+markers", name="Time-LLM forecast",
                             line=dict(color=charts.FORECAST, width=2), marker=dict(size=4)))
    dates = result.forecast["date"]
    fig.add_vrect(x0=dates.iloc[0].isoformat(), x1=dates.iloc[-1].isoformat(), fillcolor="rgba(220, 38, 38, 0.06)",
                  line_width=0, layer="below")
    fig.update_yaxes(title_text="value")
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=62, b=10), hovermode="x unified",
                      title=dict(text=f"{channel}: the {len(dates)} steps after row {result.origin}", y=1.0,
                                 yref="container", yanchor="top", pad=dict(t=10)),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0))
    return fig


def render_future_forecast(target: Any) -> None:
    """The section for the page's run (``explorer_ui.model.Inspected``); M4 runs are declined with a message."""
    config, data = target.config, target.data
    seq_len, pred_len = config.model.seq_len, config.model.pred_len
    st.subheader("Forecast the future")
    if shared.is_m4(config.data.name):
        st.info(M4_DECLINED)
        return
    st.markdown(f"The run's model forecasts the **{pred_len} steps after the last row** from the {seq_len} rows "
                f"before it, scaled with the run's own scaler (fitted on its train split). Timestamps continue at "
                f"the data's step ({data.freq}).")
    source = st.radio("Forecast after the last row of", [OWN_DATA, UPLOADED], horizontal=True, key=SOURCE_KEY)
    run_id = target.run_id or "untrained"
    payload = name = None
    fill = bool(config.data.fill_missing)
    if source == UPLOADED:
        upload = st.file_uploader(f"A CSV with the run's channels ({', '.join(data.channels)}) at the same step",
                                  type=["csv", "txt"], key=UPLOAD_KEY)
        fill = st.checkbox("Fill missing values forward", value=fill, key=FILL_KEY,
                           help="Off: a CSV with empty cells is refused, naming the rows and columns.")
        if upload is None:
            st.info(f"Upload a CSV: a date column and the channels {', '.join(data.channels)}, at least {seq_len} rows.")
            return
        payload, name = upload.getvalue(), upload.name

    def run(cutoff: int | None) -> FutureForecast | None:
        try:
            with st.spinner("Forecasting ..."):
                return _forecast(target.model, target.model_key, data, run_id, payload, name, cutoff, fill,
                                 bool(config.data.sentinels_missing))
        except TimeLLMError as error:
            st.error(str(error))
            return None

    result = run(None)
    if result is None:
        return
    if st.toggle("Forecast from an earlier row, to compare with the truth", key=EARLIER_KEY,
                 help="The forecast starts after the row you choose; the rows after it are drawn as the truth."):
        default = max(seq_len, result.rows - pred_len)
        cutoff = int(st.number_input(f"Rows before the forecast ({seq_len} to {result.rows})", min_value=seq_len,
                                     max_value=result.rows, value=default, step=1,
                                     key=f"{CUTOFF_KEY}_{result.rows}"))  # a new file's rows get a fresh input
        result = run(cutoff)
        if result is None:
            return
    for message in result.warnings:
        st.warning(message)
    _show(result, run_id)


def _show(result: FutureForecast, run_id: str) -> None:
    channels = result.channels
    columns = st.columns(4)
    columns[0].metric("Forecast starts", str(result.forecast["date"].iloc[0]))
    columns[1].metric("Steps x channels", f"{len(result.forecast)} x {len(channels)}")
    columns[2].metric("Context rows", f"{result.origin - len(result.context) + 1:,}-{result.origin:,} of {result.rows:,}")
    errors = result.truth_errors
    columns[3].metric("MSE against the truth", f"{errors['mse']:.4f}" if errors else "no truth",
                      help="Scaled space, over the forecast steps the file holds." if errors else
                      "The file ends at the forecast origin: the future is unknown.")
    channel = st.selectbox("Channel", channels, index=len(channels) - 1, key=f"{CHANNEL_KEY}_{run_id}")
    st.plotly_chart(future_chart(result, channel), key="future_chart")
    caption = f"Forecast of {result.source}, in the data's own units."
    if errors:
        caption += (f" The file holds {int(errors['steps'])} of the {len(result.forecast)} forecast steps: MSE "
                    f"{errors['mse_original']:.4g}, MAE {errors['mae_original']:.4g} in original units "
                    f"(MSE {errors['mse']:.4f}, MAE {errors['mae']:.4f} scaled).")
    st.caption(caption)
    st.download_button("Download the forecast (CSV)", result.to_csv().encode("utf-8"),
                       file_name=f"{run_id}-future.csv", mime="text/csv", key="future_download")
