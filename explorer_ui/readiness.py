"""The readiness panel (Home): which datasets and backbones are usable here, with fetch buttons."""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st

from explorer_ui import shared
from timellm_core.backbones import is_available, list_backbones
from timellm_core.backbones.fetch import fetch_backbone
from timellm_core.data import DatasetSpec, fetch_dataset, find_dataset_file, list_datasets
from timellm_core.data.m4 import M4_PATTERNS, find_m4_file
from timellm_core.errors import TimeLLMError


def render_readiness() -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Datasets**")
        _datasets()
    with right:
        st.markdown("**Backbones**")
        _backbones()


def dataset_ready(spec: DatasetSpec) -> tuple[bool, str]:
    """(usable now, where or why not) for one registry entry."""
    if spec.kind == "synthetic":
        return True, "generated in code"
    if spec.kind == "custom":
        path = st.session_state.get(shared.CUSTOM_PATH)
        return bool(path), (st.session_state.get(shared.CUSTOM_NAME, path) if path else "upload on the Data page")
    if spec.kind == "m4":
        found = [pattern for pattern in _m4_patterns() if _m4_here(pattern)]
        return bool(found), ("patterns here: " + ", ".join(found)) if found else "not downloaded"
    try:
        path = find_dataset_file(spec)
    except TimeLLMError:
        return False, "not downloaded"
    return True, str(path)


def _m4_patterns() -> list[str]:
    return list(M4_PATTERNS)


def _m4_here(pattern: str) -> bool:
    return find_m4_file(pattern, "train") is not None


def _datasets() -> None:
    rows = []
    missing: dict[str, tuple[str, str | None, str]] = {}  # label -> (dataset, M4 pattern, size)
    for spec in list_datasets():
        ready, where = dataset_ready(spec)
        rows.append({"dataset": spec.name, "ready": "yes" if ready else "no", "where": where})
        if not ready and spec.kind == "csv" and spec.url:
            missing[spec.name] = (spec.name, None, f" (~{spec.size_bytes / 1e6:.0f} MB)" if spec.size_bytes else "")
        if spec.kind == "m4":
            for pattern in _m4_patterns():
                if not _m4_here(pattern):
                    missing[f"M4 {pattern}"] = (spec.name, pattern, "")
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if missing:
        choice = st.selectbox("Fetch a dataset", list(missing), key="fetch_dataset_choice")
        name, pattern, size = missing[choice]
        if st.button(f"Download {choice}{size}", key="fetch_dataset_button"):
            run_with_progress(lambda bar: fetch_dataset(name, progress=bytes_progress(bar, choice), pattern=pattern),
                              f"Downloading {choice}")


def _backbones() -> None:
    rows, missing = [], []
    for spec in list_backbones():
        ready = is_available(spec)
        rows.append({"backbone": spec.name, "family": spec.family,
                     "ready": "yes (tiny, random)" if spec.tiny else "yes" if ready else "no",
                     "hidden": spec.hidden_size, "params": _millions(spec.params)})
        if not ready:
            missing.append(spec.name)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if missing:
        choice = st.selectbox("Fetch a backbone", missing, key="fetch_backbone_choice")
        if st.button(f"Download {choice}", key="fetch_backbone_button"):
            fetch_backbone_with_progress(choice)


def _millions(params: int | None) -> str:
    return "" if not params else f"{params / 1e6:,.0f} M"


def bytes_progress(bar: Any, label: str) -> Callable[[int, int | None], None]:
    """A data-layer progress callback (bytes done, total) drawing on ``bar``."""

    def progress(done: int, total: int | None) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"{label}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            bar.progress(0.0, text=f"{label}: {done / 1e6:.1f} MB")

    return progress


def message_progress(bar: Any) -> Callable[[str, float | None], None]:
    """A backbone-fetch progress callback (message, fraction or None) drawing on ``bar``."""
    state = {"fraction": 0.0}

    def progress(message: str, fraction: float | None) -> None:
        if fraction is not None:
            state["fraction"] = min(max(float(fraction), 0.0), 1.0)
        bar.progress(state["fraction"], text=message)

    return progress


def fetch_backbone_with_progress(name: str) -> bool:
    """Fetch a backbone with a progress bar; True when it is now available."""
    return run_with_progress(lambda bar: fetch_backbone(name, progress=message_progress(bar)),
                             f"Fetching {name}")


def run_with_progress(job: Callable[[Any], Any], label: str) -> bool:
    """Run a download with a progress bar; errors (offline, checksum) as st.error. True on success."""
    bar = st.progress(0.0, text=label + " ...")
    try:
        job(bar)
    except TimeLLMError as error:
        bar.empty()
        st.error(str(error))
        return False
    bar.progress(1.0, text=f"{label}: done")
    st.success("Done: it is now available.")
    return True
