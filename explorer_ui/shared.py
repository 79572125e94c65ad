"""What every page shares: the session keys, the process-wide caches, and small page helpers.

Per-user choices live in ``st.session_state`` under the keys below (the sidebar in ``app.py``
writes them). Process-wide objects (loaded backbones, prepared datasets, the job registry,
models rebuilt from runs) come from ``st.cache_resource`` and are only read by the pages.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator

import streamlit as st

from timellm_core.config import BackboneConfig, DataConfig, RunConfig, preset
from timellm_core.errors import TimeLLMError

# Session keys (the sidebar widgets use the same keys, so choosing updates them directly).
DATASET = "dataset"
BACKBONE = "backbone"
RUN = "run_id"
M4_PATTERN = "m4_pattern"
CUSTOM_PATH = "custom_csv_path"
CUSTOM_NAME = "custom_csv_name"
WORKING_CONFIG = "working_config"  # the Train form's RunConfig (model and training settings)
PENDING_DATASET = "pending_dataset"  # a dataset to select at the start of the next run
MY_JOB = "train_my_job"  # the run id of the training job this session started (it alone may stop it)
PENDING_RUN = "pending_run"  # a run (just finished) to select at the start of the next run

NO_RUN = "(none: untrained model)"
DEFAULT_PRESET = "cpu-quick"


# ------------------------------------------------------------------------------------------
# Importing the core while parts of it may still be missing
# ------------------------------------------------------------------------------------------


def optional_core(module: str) -> ModuleType | None:
    """Import ``module`` from timellm_core, or None when that part of the package does not exist."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module == missing or module.startswith(missing + "."):
            return None
        raise  # a missing dependency of a module that exists is a real fault


def require_core(module: str, what: str) -> ModuleType:
    """Import ``module``; when it is not built yet, say so plainly on the page and stop the script."""
    found = optional_core(module)
    if found is None:
        st.info(f"The {what} (`{module}`) is not part of this installation yet, so this part of the "
                "explorer cannot run. Everything else keeps working.")
        st.stop()
    return found


@contextmanager
def core_errors() -> Iterator[None]:
    """Show a ``TimeLLMError`` as ``st.error(message)`` and stop the page (never a traceback)."""
    try:
        yield
    except TimeLLMError as error:
        st.error(str(error))
        st.stop()


# ------------------------------------------------------------------------------------------
# The user's choices
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The sidebar's current choices; None means nothing chosen yet."""

    dataset: str | None
    backbone: str | None
    run_id: str | None
    m4_pattern: str | None
    custom_path: str | None


def selection() -> Selection:
    run = st.session_state.get(RUN)
    return Selection(
        dataset=st.session_state.get(DATASET),
        backbone=st.session_state.get(BACKBONE),
        run_id=None if run in (None, NO_RUN) else run,
        m4_pattern=st.session_state.get(M4_PATTERN),
        custom_path=st.session_state.get(CUSTOM_PATH),
    )


def working_config() -> RunConfig:
    """The session's RunConfig (Train form), with the sidebar's dataset and backbone filled in."""
    if WORKING_CONFIG not in st.session_state:
        st.session_state[WORKING_CONFIG] = preset(DEFAULT_PRESET)
    config: RunConfig = st.session_state[WORKING_CONFIG].copy()
    chosen = selection()
    if chosen.dataset:
        config.data.name = chosen.dataset
        config.data.data_path = chosen.custom_path if chosen.dataset == "custom" else None
        if chosen.dataset.lower() == "m4":
            config.data.seasonal_patterns = chosen.m4_pattern or config.data.seasonal_patterns or "Hourly"
            config.data.features = "S"
            _use_m4_lengths(config)
        else:
            config.data.seasonal_patterns = None
    if chosen.backbone:
        config.backbone.name = chosen.backbone
    return config


def set_working_config(config: RunConfig) -> None:
    """Store the session's settings (the sidebar's dataset and backbone are kept separately)."""
    st.session_state[WORKING_CONFIG] = config.copy()


def _use_m4_lengths(config: RunConfig) -> None:
    """M4's protocol fixes the lengths: pred_len = the pattern's horizon, seq_len = two horizons."""
    m4 = optional_core("timellm_core.data.m4")
    if m4 is None:
        return
    try:
        meta = m4.m4_pattern(config.data.seasonal_patterns)
    except TimeLLMError:
        return
    config.model.seq_len, config.model.pred_len = meta.seq_len, meta.horizon
    config.model.patch_len = min(config.model.patch_len, meta.seq_len)


def channel_count(config: RunConfig) -> int | None:
    """Input channels for the config's dataset and features, without loading it (None when unknown)."""
    if config.data.features == "S" or is_m4(config.data.name):
        return 1
    if config.data.name == "custom":
        report = st.session_state.get("data_upload_report")
        return len(report.channels) if report is not None else None
    data = optional_core("timellm_core.data")
    if data is None:
        return None
    try:
        return data.get_dataset_spec(config.data.name).channels
    except TimeLLMError:
        return None


def is_m4(name: str | None) -> bool:
    return bool(name) and name.lower() == "m4"


def choose_run_next_run(run_id: str) -> None:
    """Select run ``run_id`` (with its dataset and backbone) in the sidebar on the next script run."""
    st.session_state[PENDING_RUN] = run_id


def choose_dataset_next_run(name: str) -> None:
    """Select ``name`` in the sidebar on the next run (its widget cannot change once drawn in this one)."""
    st.session_state[PENDING_DATASET] = name


def need(what: str, where: str) -> None:
    """Tell the person what to choose first, then stop the page."""
    st.info(f"Choose {what} first ({where}).")
    st.stop()


# ------------------------------------------------------------------------------------------
# Process-wide resources
# ------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner=False, max_entries=6)
def prepared_data(config: DataConfig, seq_len: int, pred_len: int) -> Any:
    """``prepare_data`` once per (data settings, seq_len, pred_len), shared by every session (read only)."""
    from timellm_core.data import prepare_data

    return prepare_data(config, seq_len=seq_len, pred_len=pred_len)


@st.cache_resource(show_spinner=False, max_entries=3)
def loaded_backbone(config: BackboneConfig) -> Any:
    """A loaded, frozen backbone per BackboneConfig; shared read-only (eval mode, no gradients)."""
    from timellm_core.backbones import load_backbone

    return load_backbone(config)


@st.cache_resource(show_spinner=False)
def job_registry() -> Any:
    """The one registry of background training jobs for this server process (thread-safe)."""
    from timellm_core.training import default_registry

    return default_registry()


def load_data(config: RunConfig) -> Any:
    """The prepared data for ``config``, with a spinner on the first (slow) load."""
    with core_errors(), st.spinner(f"Loading {config.data.name} ..."):
        return prepared_data(config.data, config.model.seq_len, config.model.pred_len)


def load_backbone(config: BackboneConfig) -> Any:
    """The loaded backbone for ``config``, with a spinner (the first load can take a while)."""
    with core_errors(), st.spinner(f"Loading backbone {config.name} ({config.llm_layers} layers) ..."):
        return loaded_backbone(config)
