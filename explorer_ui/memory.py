"""The Backbone page's memory plan: would a training run fit on a 6 GB GPU, per precision?"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer_ui import shared
from timellm_core.backbones import BackboneSpec
from timellm_core.backbones.memory import PRECISIONS, plan_memory
from timellm_core.config import RunConfig

GPU_GIB = 6.0
HEADROOM = 1.10  # CUDA context, allocator slack and transient buffers are not in the estimate
GIB = 1024 ** 3


def render_memory_plan(config: RunConfig, spec: BackboneSpec, n_channels: int | None) -> None:
    """A table of estimated training memory for fp32, bf16 and 4-bit, and the answer for 6 GB."""
    channels = n_channels or 7
    rows = []
    with shared.core_errors():
        for precision in PRECISIONS:
            plan = plan_memory(spec, int(config.backbone.llm_layers), precision, config.model,
                               batch_size=int(config.training.batch_size), n_channels=channels,
                               training=True, optimize=bool(config.model.optimize))
            rows.append({"precision": precision, "frozen LLM": plan.frozen_weight_bytes / GIB,
                         "trainable + Adam": plan.trainable_bytes / GIB, "activations": plan.activation_bytes / GIB,
                         "total (GiB)": plan.total_bytes / GIB,
                         f"fits {GPU_GIB:.0f} GB?": "yes" if plan.total_bytes * HEADROOM <= GPU_GIB * GIB else "no"})
    table = pd.DataFrame(rows)
    chosen = "4bit" if config.backbone.load_in_4bit else "bf16"
    answer = table.loc[table["precision"] == chosen].iloc[0]
    verdict = "Yes" if answer[f"fits {GPU_GIB:.0f} GB?"] == "yes" else "No"
    st.markdown(f"**{verdict}**, in {chosen}: about {answer['total (GiB)']:.2f} GiB to train "
                f"({config.backbone.llm_layers} layers, batch {config.training.batch_size} x {channels} channels, "
                f"seq_len {config.model.seq_len}, {config.model.num_prototypes} prototypes).")
    sizes = [column for column in table.columns if column.endswith(("LLM", "Adam", "activations", "(GiB)"))]
    st.dataframe(table.style.format({column: "{:.3f}" for column in sizes}), hide_index=True, key="backbone_memory")
    st.caption(f"Estimates before loading, from the model's shapes; 'fits' keeps {HEADROOM - 1:.0%} headroom for "
               "the CUDA context and allocator slack. Channel independence multiplies activations by the channel "
               f"count ({channels}{'' if n_channels else ', assumed: choose a dataset'}). Change batch size, "
               "seq_len or layers on the Train page.")
