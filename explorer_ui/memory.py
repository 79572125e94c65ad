"""The Backbone page's memory plan: would a training run fit on a 6 GB GPU, per precision, and if not, what does."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from explorer_ui import shared
from explorer_ui.train_form import show_in_form
from timellm_core.backbones import BackboneSpec
from timellm_core.backbones.gpu_fit import GPU_GIB, GpuOption, TrainingSettings, advise_gpu, gpu_bytes_needed
from timellm_core.backbones.memory import CUDA_RESERVE_GIB, PRECISIONS, plan_memory
from timellm_core.config import RunConfig

GIB = 1024 ** 3


def render_memory_plan(config: RunConfig, spec: BackboneSpec, n_channels: int | None) -> None:
    """A table of estimated training memory for fp32, bf16 and 4-bit, and the answer for 6 GB."""
    channels = n_channels or 7
    rows = []
    with shared.core_errors():
        for precision in PRECISIONS:
            plan = plan_memory(spec, int(config.backbone.llm_layers), precision, config.model,
                               batch_size=int(config.training.batch_size), n_channels=channels,
                               training=True, optimize=bool(config.model.optimize), device="cuda")
            rows.append({"precision": precision, "frozen LLM": plan.frozen_weight_bytes / GIB,
                         "trainable + Adam": plan.trainable_bytes / GIB, "activations": plan.activation_bytes / GIB,
                         "total (GiB)": plan.total_bytes / GIB, "step peak (GiB)": plan.peak_bytes / GIB,
                         f"fits {GPU_GIB:.0f} GB?": "yes" if gpu_bytes_needed(plan) <= GPU_GIB * GIB else "no"})
    table = pd.DataFrame(rows)
    chosen = "4bit" if config.backbone.load_in_4bit else "fp32"  # what a run loads (``load_backbone``)
    answer = table.loc[table["precision"] == chosen].iloc[0]
    verdict = "Yes" if answer[f"fits {GPU_GIB:.0f} GB?"] == "yes" else "No"
    st.markdown(f"**{verdict}**, in {chosen}: a training step peaks at about {answer['step peak (GiB)']:.2f} GiB "
                f"({config.backbone.llm_layers} layers, batch {config.training.batch_size} x {channels} channels, "
                f"seq_len {config.model.seq_len}, {config.model.num_prototypes} prototypes).")
    sizes = [column for column in table.columns if column.endswith(("LLM", "Adam", "activations", "(GiB)"))]
    st.dataframe(table.style.format({column: "{:.3f}" for column in sizes}), hide_index=True, key="backbone_memory")
    assumed = "" if n_channels else ", assumed: choose a dataset"
    st.caption(f"Estimates before loading, from the model's shapes, for training on CUDA; 'fits' adds "
               f"{CUDA_RESERVE_GIB} GiB for the CUDA context and allocator slack to the step's peak. Channel "
               f"independence multiplies activations by the channel count ({channels}{assumed}). Change batch "
               "size, seq_len or layers on the Train page.")


GPU_PLAN_APPLIED = "backbone_gpu_plan_applied"  # the message after "Use these settings"


def _use_settings(settings: TrainingSettings, changes: tuple[str, ...]) -> None:
    """Button callback: put the plan's settings into the working config (and this page's own widgets)."""
    config = shared.working_config()
    config.backbone.llm_layers, config.backbone.load_in_4bit = settings.llm_layers, settings.load_in_4bit
    config.training.batch_size = settings.batch_size
    config.model.optimize, config.model.num_prototypes = settings.optimize, settings.num_prototypes
    shared.set_working_config(config)
    st.session_state["backbone_layers"] = settings.llm_layers  # else the widgets would set the old values back
    st.session_state["backbone_4bit"] = settings.load_in_4bit
    show_in_form(config)  # the Train form shows them too
    st.session_state[GPU_PLAN_APPLIED] = ", ".join(changes)


def _option_row(option: GpuOption) -> dict[str, Any]:
    settings, plan = option.settings, option.plan
    return {"change": ", ".join(option.changes) or "(as set)", "llm_layers": settings.llm_layers,
            "batch": settings.batch_size, "4-bit": "yes" if settings.load_in_4bit else "no",
            "prototypes": settings.num_prototypes, "step peak (GiB)": plan.peak_bytes / GIB,
            "with the CUDA context (GiB)": option.needed_bytes / GIB}


def render_gpu_plan(config: RunConfig, spec: Any, n_channels: int | None) -> None:
    """A plan for a 6 GB GPU: do the settings fit, and if not, the nearest settings that do, one click each."""
    channels = n_channels or 7
    st.markdown(f"**A plan for a {GPU_GIB:.0f} GB GPU**")
    with shared.core_errors():
        advice = advise_gpu(spec, config.model, int(config.backbone.llm_layers), int(config.training.batch_size),
                            bool(config.backbone.load_in_4bit), channels, gigabytes=GPU_GIB)
    applied = st.session_state.pop(GPU_PLAN_APPLIED, None)
    if applied:
        st.success(f"Settings changed ({applied}): the Train page starts with them.")
    asked = advice.asked
    need = f"about {asked.needed_bytes / GIB:.2f} GiB of {GPU_GIB:.0f}"
    if advice.asked_fits:
        st.markdown(f"Your settings fit: {need}.")
    elif not advice.options:
        st.warning(f"Your settings need {need}, and nothing this project can change brings {spec.name} "
                   f"under {GPU_GIB:.0f} GB.")
    else:
        st.warning(f"Your settings need {need}. Settings that fit:")
    rows = [asked, *advice.options]
    table = pd.DataFrame([_option_row(option) for option in rows])
    sizes = [column for column in table.columns if "GiB" in column]
    st.dataframe(table.style.format({column: "{:.2f}" for column in sizes}), hide_index=True,
                 key="backbone_gpu_plan")
    for index, option in enumerate(advice.options):
        st.button(f"Use these settings: {', '.join(option.changes)}", key=f"backbone_gpu_plan_use_{index}",
                  on_click=_use_settings, args=(option.settings, option.changes))
    st.caption(
        "Training on CUDA: the LLM in float32, or in NF4 with bf16 compute; Adam. Step peak = what stays between "
        "steps (frozen LLM, trainable layers, Adam's moments) + the largest moment of a step (the kept activations "
        f"and one layer's backward working set, or all gradients); {CUDA_RESERVE_GIB} GiB is added for the CUDA "
        "context and allocator slack. The largest single item is usually the mapping layer (vocabulary x "
        "prototypes) with its gradient and Adam's two moments; this project trains it with Adam only. "
        f"{channels} channels{'' if n_channels else ' (assumed: choose a dataset)'}.")
