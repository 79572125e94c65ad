"""The Train page's ablation-study table (Tan et al., NeurIPS 2024): the runs of one study side by side.

A study is made by ``python -m timellm_core ablate --preset NAME``; its runs carry a study tag in
their config.json, so a study still training in a terminal shows up here run by run.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from timellm_core.ablation.study import DEFAULT_MODES
from timellm_core.ablation.table import (
    MODE_LABELS, display_row, format_percent, group_studies, run_measures, study_rows, study_tag)


def render_ablation_studies(runs: list[Any]) -> None:
    """A table per study among ``runs`` (RunInfo, newest first): one row per llm_mode; nothing when there is none."""
    studies = group_studies(runs)
    if not studies:
        return
    st.subheader("Ablation studies")
    names = list(studies)
    chosen = names[0] if len(names) == 1 else st.selectbox(
        "Study", names, key="train_ablation_study", help="Studies made by `python -m timellm_core ablate`, newest first.")
    members = studies[chosen]
    unfinished = [run for run in members if run.status != "finished"]
    st.caption(f"`{chosen}`: {len(members)} runs"
               + (f", {len(unfinished)} not finished ({', '.join(sorted({r.status for r in unfinished}))})"
                  if unfinished else "") + ". Only llm_mode and the seed differ between them.")
    rows = study_rows(members, DEFAULT_MODES)
    table = pd.DataFrame([{**display_row(row), "what replaces the LLM": MODE_LABELS.get(row.mode, row.mode)}
                          for row in rows])
    st.dataframe(table, hide_index=True, width="stretch", key="train_ablation_table")
    st.caption("Test MSE / MAE in scaled space, mean ± standard deviation over seeds. Shuffled +%: how much the test "
               "error grows when every input window is shuffled in time (Tan et al.: a model that uses the order "
               "gets worse). Seconds per step: median training step; peak RSS: the process that trained the run.")
    with st.expander("The runs of this study"):
        st.dataframe(pd.DataFrame([_run_row(run) for run in members]), hide_index=True, width="stretch",
                     key="train_ablation_runs")


def _run_row(run: Any) -> dict[str, Any]:
    measures = run_measures(run)
    return {"run": run.run_id, "mode": measures.mode, "seed": (study_tag(run) or {}).get("seed"),
            "status": run.status, "test MSE": measures.test_mse, "test MAE": measures.test_mae,
            "shuffled MSE +%": format_percent(measures.shuffled_mse_increase_pct),
            "s / step": measures.seconds_per_step}
