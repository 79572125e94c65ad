"""The Time-LLM explorer: navigation over pages/ and the sidebar every page shares.

Run with `make run` (streamlit on 127.0.0.1:8501). Pages are thin: they read the session's
choices, call timellm_core, and draw with Plotly.
"""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Time-LLM explorer", page_icon=":material/timeline:", layout="wide")

# Every url_path differs from its file's name on purpose. Streamlit still knows the old "pages/
# folder" mode: when the first run of a server process asks for a page by a URL that matches a file
# in pages/ (a bookmark of /train after a restart), it runs that file alone, without this script,
# the sidebar or the navigation, for every session. A URL that matches no file name makes it run
# this script instead, whose st.navigation then turns that mode off for the whole process.
PAGES = {
    "Start": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="overview", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/table_chart:", url_path="dataset"),
        st.Page("pages/backbone.py", title="Backbone", icon=":material/memory:", url_path="llm"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="training"),
    ],
    "Look inside": [
        st.Page("pages/patches.py", title="Patches", icon=":material/view_week:", url_path="patching"),
        st.Page("pages/reprogramming.py", title="Prompt & reprogramming", icon=":material/translate:",
                url_path="prompt"),
        st.Page("pages/llm_attention.py", title="Inside the LLM", icon=":material/psychology:", url_path="inside-llm"),
        st.Page("pages/forecast.py", title="Forecast", icon=":material/query_stats:", url_path="forecasts"),
    ],
}

# The navigation goes out before anything heavy is imported: until it arrives, a fresh server's first
# visitor sees Streamlit's own list of the files in pages/, and a click there opens a screen alone.
navigation = st.navigation(PAGES, expanded=True)

from explorer_ui.sidebar import render_sidebar  # noqa: E402 (imports the library, torch included)

render_sidebar()
navigation.run()
