"""M4 on the Data page: one series of the chosen seasonal pattern, its test horizon shaded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from explorer_ui import charts
from explorer_ui import shared
from explorer_ui.readiness import bytes_progress, run_with_progress
from timellm_core.config import DataConfig, RunConfig
from timellm_core.data import fetch_dataset, prepare_data
from timellm_core.data.m4 import find_m4_file, m4_pattern


@st.cache_resource(show_spinner=False, max_entries=2)
def m4_data(pattern: str, data_path: str | None) -> object:
    """The pattern's M4Data (series, test horizons, benchmarks), shared read-only."""
    meta = m4_pattern(pattern)
    return prepare_data(DataConfig(name="m4", seasonal_patterns=meta.name, features="S", data_path=data_path),
                        seq_len=meta.seq_len, pred_len=meta.horizon)


def load_m4(pattern: str, data_path: str | None = None) -> object:
    with shared.core_errors(), st.spinner(f"Reading M4 {pattern} ..."):
        return m4_data(pattern, data_path)


def series_picker(data: object, key: str) -> int:
    """A series id picker (type to search); returns the series index."""
    ids = list(data.series_ids)
    chosen = st.selectbox(f"Series ({len(ids)} in this pattern)", ids, key=key,
                          help="Type an id such as H1 or W10 to search.")
    return ids.index(chosen)


def render_m4_data(config: RunConfig) -> None:
    pattern = config.data.seasonal_patterns or "Hourly"
    if find_m4_file(pattern, "train") is None:
        st.warning(f"The M4 {pattern} files are not on this machine. Put {pattern}-train.csv and "
                   f"{pattern}-test.csv in dataset/m4/ (or $TIMELLM_DATA/m4/), or download them here.")
        if st.button(f"Download M4 {pattern}", key="m4_fetch", type="primary"):
            if run_with_progress(lambda bar: fetch_dataset("m4", progress=bytes_progress(bar, f"M4 {pattern}"),
                                                           pattern=pattern), f"Downloading M4 {pattern}"):
                st.rerun()
        st.stop()
    data = load_m4(pattern)
    meta = data.pattern
    st.subheader(f"M4 {meta.name}")
    st.markdown(data.description)
    lengths = np.array([values.size for values in data.series.train])
    columns = st.columns(5)
    columns[0].metric("Series", f"{len(data.series_ids):,}")
    columns[1].metric("Horizon", meta.horizon, help="Forecast steps the competition asks for (pred_len).")
    columns[2].metric("Input (seq_len)", meta.seq_len, help="Two horizons, as in the reference's M4 protocol.")
    columns[3].metric("Seasonal period m", meta.frequency, help="Used by MASE and the Naive2 benchmark.")
    columns[4].metric("History length", f"{int(lengths.min())}-{int(lengths.max())}",
                      help=f"median {int(np.median(lengths))} values")
    index = series_picker(data, key=f"m4_series_{meta.name}")
    history = np.asarray(data.train_series(index), dtype=float)
    steps = np.arange(history.size)
    test = None
    if data.series.test is not None:
        test = np.asarray(data.test_series(index), dtype=float)
    if test is not None:
        horizon_steps = np.arange(history.size, history.size + test.size)
        figure = charts.single_series(
            steps, history, shade=(history.size - 0.5, history.size + test.size - 0.5),
            shade_label="test horizon", tail=(np.r_[steps[-1], horizon_steps], np.r_[history[-1], test]),
            title=f"{data.series_ids[index]}: {history.size} training values + {test.size} test values")
    else:
        figure = charts.single_series(steps, history, title=f"{data.series_ids[index]}: {history.size} values")
        st.warning(f"The M4 {meta.name} test file is not here: the test horizon cannot be shown.")
    figure.update_xaxes(title_text="step")
    st.plotly_chart(figure, key="m4_series_chart")
    st.caption("M4 series have no dates, only positions. Training cuts windows from the last "
               f"{meta.window_limit} values of each history (the reference protocol); the test horizon is "
               "never seen in training. M4 values are not scaled: each window is normalised by the model.")
    values = pd.Series(history)
    st.dataframe(pd.DataFrame({"statistic": ["length", "mean", "std", "min", "median", "max"],
                               "training history": [values.size, values.mean(), values.std(ddof=0), values.min(),
                                                    values.median(), values.max()]}).set_index("statistic")
                 .style.format(precision=3))
