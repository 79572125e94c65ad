"""The model the "look inside" pages inspect: the chosen run's trained weights, or an untrained one.

Models are process-wide (``st.cache_resource``) and only used under ``torch.no_grad`` in eval
mode, so sessions share them. A trace is computed by the model's own forward (one code path for
training and for the pages) and cached per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
import torch

from explorer_ui import jobs
from explorer_ui import shared
from explorer_ui.m4_view import load_m4
from timellm_core.config import BackboneConfig, RunConfig
from timellm_core.model import TimeLLM
from timellm_core.training import load_run_model


@dataclass(frozen=True)
class Inspected:
    """What a page inspects: settings, data, backbone, model, and whether it is trained."""

    config: RunConfig
    data: Any  # ForecastData or M4Data
    backbone: Any
    model: Any  # TimeLLM in eval mode
    trained: bool
    run_id: str | None
    model_key: str  # identifies the model's weights, for caching traces
    run: Any = None  # the run's RunInfo (folder, test metrics) when a run is chosen


@st.cache_resource(show_spinner=False, max_entries=2)
def _run_model(run_dir: str, weights_mtime: float, backbone_config: BackboneConfig) -> tuple[Any, Any]:
    """(model with the run's best weights, its data); reloaded when model.safetensors changes."""
    backbone = shared.loaded_backbone(backbone_config)
    model, data = load_run_model(run_dir, backbone=backbone)
    model.eval()
    return model, data


@st.cache_resource(show_spinner=False, max_entries=2)
def _untrained_model(config: RunConfig, description: str | None) -> Any:
    """A freshly initialised model (seeded by the config's seed) over the cached backbone."""
    backbone = shared.loaded_backbone(config.backbone)
    with torch.random.fork_rng(devices=[]):  # seeded, without moving the app's global random state
        torch.manual_seed(int(config.training.seed))
        model = TimeLLM(config.model, backbone, description=description)
    model.eval()
    return model


def inspected(need_run: bool = False) -> Inspected:
    """The model to inspect for the sidebar's choices; tells the person what to choose and stops if needed."""
    chosen = shared.selection()
    if chosen.run_id is not None:
        run = jobs.find_run(chosen.run_id)
        if run is None or run.config is None:
            st.error(f"The run {chosen.run_id} cannot be read any more"
                     + (f": {run.info.problem}" if run is not None and run.info.problem else "") + ".")
            st.stop()
        weights = run.info.weights_path
        with shared.core_errors(), st.spinner(f"Loading run {run.run_id} (backbone {run.config.backbone.name}) ..."):
            model, data = _run_model(str(run.info.path), weights.stat().st_mtime if weights.exists() else 0.0,
                                     run.config.backbone)
        return Inspected(run.config, data, model.backbone, model, True, run.run_id,
                         f"run:{run.run_id}:{weights.stat().st_mtime if weights.exists() else 0}", run.info)
    if need_run:
        shared.need("a finished run", "in the sidebar's Run picker; train one on the Train page")
    if chosen.dataset is None:
        shared.need("a dataset", "in the sidebar")
    if chosen.backbone is None:
        shared.need("a backbone", "in the sidebar; tiny ones load instantly")
    config = shared.working_config()
    if shared.is_m4(config.data.name):
        data = _m4(config)
    else:
        data = shared.load_data(config)
    backbone = shared.load_backbone(config.backbone)
    with shared.core_errors(), st.spinner("Building an untrained model ..."):
        model = _untrained_model(config, data.description)
    key = f"untrained:{hash(repr(config.to_dict()))}"
    return Inspected(config, data, backbone, model, False, None, key)


def untrained_counterpart(target: Inspected) -> tuple[Any, str]:
    """(an untrained model with the target's settings and backbone, its model key), to compare with a run."""
    if not target.trained:
        return target.model, target.model_key
    with shared.core_errors(), st.spinner("Building the untrained model to compare with ..."):
        model = _untrained_model(target.config, target.data.description)
    return model, f"untrained:{hash(repr(target.config.to_dict()))}"


def _m4(config: RunConfig) -> Any:
    return load_m4(config.data.seasonal_patterns or "Hourly", config.data.data_path)


@st.cache_resource(show_spinner=False, max_entries=16)
def _trace(_model: Any, model_key: str, _data: Any, data_key: str, split: str, index: int) -> tuple[Any, Any, Any]:
    """(input window (T, N) scaled, target (pred_len, N_out) scaled, Trace) of one window."""
    item = _data.windows(split)[index]
    x, y = item[0], item[1]
    x = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        _, trace = _model(x.unsqueeze(0), trace=True)  # x (1, T, N)
    return x.numpy(), torch.as_tensor(y).numpy(), trace


def window_trace(target: Inspected, split: str, index: int) -> tuple[Any, Any, Any]:
    """The trace of one window of ``split``, from the model's own forward (cached)."""
    data_key = f"{target.config.data}|{target.config.model.seq_len}|{target.config.model.pred_len}"
    with shared.core_errors(), st.spinner("Running the model on this window ..."):
        return _trace(target.model, target.model_key, target.data, data_key, split, int(index))
