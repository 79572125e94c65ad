"""Forecast."""

from __future__ import annotations

import streamlit as st

from pages import _shared as shared

st.title("Forecast")
shared.require_core("timellm_core.model.timellm", "Time-LLM model")
