"""A finished run next to naive, seasonal naive and DLinear on its own test windows: a sentence, a
table and a bar chart, read from the run folder's baselines.json (the Train and Forecast pages)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from explorer_ui import charts
from explorer_ui import jobs
from explorer_ui import shared
from timellm_core.comparison import compare_run, comparison_rows, comparison_sentence
from timellm_core.paper_results import compare_with_paper


def render_comparison(info: Any, key: str) -> None:
    """The comparison of run ``info`` (a RunInfo); a button computes it for runs that lack it."""
    if not info.test_metrics:
        return
    render_paper_comparison(info, key)
    st.markdown("**Against simple forecasters on the same test windows**")
    if info.baselines is None:
        st.caption("This run has not been compared with the baselines yet (runs trained from the terminal are "
                   "compared on request; it takes a few seconds, once).")
        if st.button("Compare with naive, seasonal naive and DLinear", key=f"{key}_compare"):
            with shared.core_errors(), st.spinner("Scoring the baselines on the run's test windows ..."):
                compare_run(info.path)
            jobs.refresh_runs()
            st.rerun()
        return
    rows = comparison_rows(info.test_metrics, info.baselines)
    st.markdown(comparison_sentence(rows))
    table, chart = st.columns([2, 3])
    with table:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key=f"{key}_table")
        windows = info.test_metrics.get("test_windows")
        st.caption(f"Scaled space unless marked; {windows} test windows, the same for every row. DLinear is "
                   "fitted on the run's own training windows.")
    with chart:
        st.plotly_chart(charts.comparison_bars([r["forecaster"] for r in rows], [r["MSE"] for r in rows],
                                               "test MSE (scaled)", "Test MSE: this run and the baselines"),
                        key=f"{key}_chart")


def render_paper_comparison(info: Any, key: str) -> None:
    """The paper's published figure for the run's dataset and horizon, and every setting that differs."""
    if info.config is None:
        return
    comparison = compare_with_paper(info.config, info.test_metrics, info.windows_total)
    if comparison is None:
        return
    published = comparison.published
    st.markdown("**How far from the paper**")
    columns = st.columns(4)
    columns[0].metric("published MSE", f"{published.mse:.3f}")
    columns[1].metric("this run's MSE", f"{comparison.test_mse:.3f}" if comparison.test_mse is not None else "-",
                      delta=(f"{comparison.test_mse - published.mse:+.3f}" if comparison.test_mse is not None
                             else None), delta_color="inverse")
    columns[2].metric("published MAE", f"{published.mae:.3f}")
    columns[3].metric("this run's MAE", f"{comparison.test_mae:.3f}" if comparison.test_mae is not None else "-",
                      delta=(f"{comparison.test_mae - published.mae:+.3f}" if comparison.test_mae is not None
                             else None), delta_color="inverse")
    if comparison.differences:
        st.dataframe(pd.DataFrame(comparison.differences), hide_index=True, key=f"{key}_paper_differences")
    st.caption(f"{published.source}: {published.dataset}, horizon {published.pred_len}, scaled space, every test "
               "window, LLaMA-7B. The table lists what this run does differently; with fewer layers, epochs "
               "or windows a higher error is expected, not a fault.")
