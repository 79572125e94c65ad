"""What every page shares: the session keys, the process-wide caches, and small page helpers.

Per-user choices live in ``st.session_state`` under the keys below (the sidebar, ``sidebar.py``,
writes them). Process-wide objects (loaded backbones, prepared datasets, the job registry, models
rebuilt from runs) come from ``st.cache_resource`` and are only read by the pages.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import streamlit as st

from timellm_core.backbones import Backbone
from timellm_core.backbones import load_backbone as load_frozen_backbone
from timellm_core.config import BackboneConfig, DataConfig, RunConfig, preset
from timellm_core.data import channel_names as core_channel_names
from timellm_core.data import get_dataset_spec, prepare_data
from timellm_core.data.m4 import m4_pattern
from timellm_core.errors import TimeLLMError
from timellm_core.training import JobRegistry, default_registry

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
# Errors from the core
# ------------------------------------------------------------------------------------------


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
            _fit_target(config)
    if chosen.backbone:
        config.backbone.name = chosen.backbone
    return config


def _fit_target(config: RunConfig) -> None:
    """Keep the target one of the dataset's channels (a preset's HULL is not in Weather). A registered
    benchmark's own target is in its file by definition, so that case reads nothing: every page calls
    this, and the first read of a large file (Traffic) takes seconds."""
    try:
        spec = get_dataset_spec(config.data.name)
    except TimeLLMError:
        return
    if spec.kind == "csv" and not config.data.data_path and config.data.target == spec.target:
        return
    channels = channel_names(config)
    if channels:
        config.data.target = target_in(config, channels)


def set_working_config(config: RunConfig) -> None:
    """Store the session's settings (the sidebar's dataset and backbone are kept separately)."""
    st.session_state[WORKING_CONFIG] = config.copy()


def _use_m4_lengths(config: RunConfig) -> None:
    """M4's protocol fixes the lengths: pred_len = the pattern's horizon, seq_len = two horizons."""
    try:
        meta = m4_pattern(config.data.seasonal_patterns)
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
    try:
        return get_dataset_spec(config.data.name).channels
    except TimeLLMError:
        return None


def channel_names(config: RunConfig) -> list[str] | None:
    """The dataset's channel names (the target's choices); None for M4 or a file that cannot be read yet
    (the page that loads it says why)."""
    try:
        return core_channel_names(config.data)
    except TimeLLMError:
        return None


def target_in(config: RunConfig, channels: list[str]) -> str:
    """The config's target when ``channels`` has it, else the dataset's own (OT for the benchmarks), else
    the last channel: a preset's target (qwen-cpu: HULL) does not follow the sidebar to another dataset."""
    try:
        registered = get_dataset_spec(config.data.name).target
    except TimeLLMError:
        registered = None
    for name in (config.data.target, registered):
        if name in channels:
            return name
    return channels[-1]


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
    return prepare_data(config, seq_len=seq_len, pred_len=pred_len)


@st.cache_resource(show_spinner=False, max_entries=3)
def loaded_backbone(config: BackboneConfig) -> Backbone:
    """A loaded, frozen backbone per BackboneConfig; shared read-only (eval mode, no gradients)."""
    return load_frozen_backbone(config)


@st.cache_resource(show_spinner=False)
def job_registry() -> JobRegistry:
    """The one registry of background training jobs for this server process (thread-safe)."""
    return default_registry()


def load_data(config: RunConfig) -> Any:
    """The prepared data for ``config``, with a spinner on the first (slow) load."""
    with core_errors(), st.spinner(f"Loading {config.data.name} ..."):
        return prepared_data(config.data, config.model.seq_len, config.model.pred_len)


def load_backbone(config: BackboneConfig) -> Backbone:
    """The loaded backbone for ``config``, with a spinner (the first load can take a while)."""
    with core_errors(), st.spinner(f"Loading backbone {config.name} ({config.llm_layers} layers) ..."):
        return loaded_backbone(config)
