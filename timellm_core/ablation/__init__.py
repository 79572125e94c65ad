"""The ablation study of Tan et al. (NeurIPS 2024, "Are Language Models Actually Useful for Time Series
Forecasting?"): every llm_mode on one setting (``study``), the input-shuffling test (``shuffle``), and
the comparison table read from the runs' folders (``table``). No Streamlit here: the ``ablate``
command and the Train page both use it.
"""
