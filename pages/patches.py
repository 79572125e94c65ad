"""Patches: one input window, raw and normalised, cut into overlapping patches, and their embeddings."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer_ui import charts
from explorer_ui import shared
from explorer_ui.model import inspected, window_trace
from explorer_ui.window import pick_window, raw_window
from timellm_core.inspection import patch_spans

st.title("Patches")
st.markdown("Time-LLM reads a window of T steps per channel. It first normalises the window (RevIN: subtract "
            "its mean, divide by its standard deviation), then pads the end with `stride` copies of the last "
            "value and cuts it into patches of `patch_len` steps every `stride` steps. With stride < patch_len "
            "neighbouring patches overlap. A 1-D convolution turns each patch into a `d_model`-wide embedding.")
target = inspected()
model_config = target.config.model
choice = pick_window(target, key="patches")
x, _, trace = window_trace(target, choice.split, choice.index)
row = trace.series_index(0, choice.channel)
normalised = trace.normalized_input[0, :, choice.channel].numpy()
padded = np.concatenate([normalised, np.repeat(normalised[-1:], model_config.stride)])
spans = patch_spans(model_config.seq_len, model_config.patch_len, model_config.stride)
patches = trace.patches[row].numpy()  # (P, patch_len), exactly what the model embedded
if patches.shape[0] != len(spans):  # the drawing must match what the model did
    st.error(f"The model made {patches.shape[0]} patches but the settings give {len(spans)}: please report this.")
    st.stop()

axis, raw = raw_window(target, choice, x)
mean, std = float(trace.mean[0, 0, choice.channel]), float(trace.stdev[0, 0, choice.channel])
st.plotly_chart(charts.simple_line(axis, {choice.channel_name: raw}, f"Raw window ({choice.label})",
                                   "time" if np.issubdtype(np.asarray(axis).dtype, np.datetime64) else "step",
                                   "original units", height=260), key="patches_raw")
space = "raw values (M4 is not scaled)" if shared.is_m4(target.config.data.name) else "the train-scaled values"
st.caption(f"RevIN statistics of this window, computed on {space} the model receives: mean {mean:.4f}, "
           f"std {std:.4f}. The model subtracts and divides by them, and undoes it on the forecast.")

highlight = st.slider("Highlight patch", 0, len(spans) - 1, 0, key="patches_highlight",
                      help="Patches alternate above and below the line so overlaps stay visible.")
st.plotly_chart(charts.window_with_patches(normalised, padded, spans, highlight,
                                           f"Normalised window, {len(spans)} patches of {model_config.patch_len} "
                                           f"every {model_config.stride} steps", "normalised value"),
                key="patches_boundaries")
start, end = spans[highlight]
overlap = max(0, model_config.patch_len - model_config.stride)
st.caption(f"Patch {highlight} covers steps {start}-{end - 1}"
           + (f" (steps from {model_config.seq_len} on are the end padding)" if end > model_config.seq_len else "")
           + (f"; it shares {overlap} steps with each neighbour." if overlap else "; patches do not overlap."))
left, right = st.columns([1, 2])
with left:
    st.plotly_chart(charts.simple_line(np.arange(start, end), {f"patch {highlight}": patches[highlight]},
                                       f"Patch {highlight} as the model sees it", "step", "normalised value",
                                       height=300), key="patches_one")
with right:
    embeddings = trace.patch_embeddings[row].numpy()  # (P, d_model)
    st.plotly_chart(charts.heatmap(embeddings, list(range(embeddings.shape[1])), list(range(embeddings.shape[0])),
                                   "embedding dimension (d_model)", "patch", "value",
                                   f"Patch embeddings ({embeddings.shape[0]} x {embeddings.shape[1]})",
                                   colorscale="RdBu", zmid=0.0, height=360), key="patches_embeddings")
status = (f"trained weights of run {target.run_id}" if target.trained
          else "an untrained model (random embedding weights): choose a run in the sidebar for trained ones")
st.caption(f"Embeddings from {status}. Patch values and boundaries do not depend on training.")
