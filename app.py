"""The Time-LLM explorer: navigation over pages/ and the sidebar every page shares.

Run with `make run` (streamlit on 127.0.0.1:8501). Pages are thin: they read the session's
choices, call timellm_core, and draw with Plotly.
"""

from __future__ import annotations

import streamlit as st

from pages._sidebar import render_sidebar

st.set_page_config(page_title="Time-LLM explorer", page_icon=":material/timeline:", layout="wide")

PAGES = {
    "Start": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/table_chart:"),
        st.Page("pages/backbone.py", title="Backbone", icon=":material/memory:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ],
    "Look inside": [
        st.Page("pages/patches.py", title="Patches", icon=":material/view_week:"),
        st.Page("pages/reprogramming.py", title="Prompt & reprogramming", icon=":material/translate:"),
        st.Page("pages/forecast.py", title="Forecast", icon=":material/query_stats:"),
    ],
}

navigation = st.navigation(PAGES, expanded=True)
render_sidebar()
navigation.run()
