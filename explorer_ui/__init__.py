"""The Streamlit explorer's helpers: everything the screens in ``pages/`` share.

``app.py`` is the entry point and ``pages/`` holds one script per screen (Home, Data, Backbone,
Train, Patches, Prompt & reprogramming, Forecast). The modules here are what those screens have in
common, kept out of ``pages/`` so that Streamlit never mistakes a helper for a screen:

- ``shared``: the session keys, the process-wide caches (data, backbones, the job registry) and
  small page helpers such as ``core_errors`` (a ``TimeLLMError`` becomes ``st.error``);
- ``sidebar``: the sidebar every page shows (dataset, backbone, run);
- ``charts``: the Plotly figures, drawn from the plain data of ``timellm_core.inspection``;
- ``jobs``, ``model``, ``window``, ``readiness``, ``memory``, ``train_form``, ``comparison``,
  ``m4_view``, ``m4_forecast``: the parts of one or two screens that grew large enough to stand alone.

Unlike ``timellm_core`` (which never imports Streamlit), every module here may draw with ``st.*``.
"""
